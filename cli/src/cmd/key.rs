//! `ferry key`: the publisher key.

use anyhow::Result;
use clap::Subcommand;
use ferry_node::data_dir::DataDir;
use serde_json::json;

use crate::Global;
use crate::output::emit;

/// Subcommands of `ferry key`.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Print the publisher public key (give it to an operator to own a namespace).
    Show,
}

/// Runs `ferry key …`.
pub async fn run(g: &Global, c: KeyCommand) -> Result<()> {
    match c {
        KeyCommand::Show => {
            let key = DataDir::open(&g.data_dir)?.publisher_key()?.public();
            emit(g.json, &json!({ "publisher": key.to_string() }), |_| {
                key.to_string()
            })
        }
    }
}

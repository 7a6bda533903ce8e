//! `ferry init`: keys and network membership.

use anyhow::{Result, bail};
use clap::ArgGroup;
use ferry_node::data_dir::DataDir;
use ferry_protocol::NetworkId;
use serde_json::json;

use crate::Global;
use crate::output::emit;

/// Arguments of `ferry init`.
#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["new_network", "network"])))]
pub struct Args {
    /// Create a new network operated by this node's key.
    #[arg(long)]
    new_network: bool,
    /// Join the network with this id.
    #[arg(long, value_name = "ID")]
    network: Option<NetworkId>,
}

/// Runs `ferry init`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let dir = DataDir::open(&g.data_dir)?;
    let network = match (a.new_network, a.network) {
        (true, _) => ferry_node::init_new_network(&dir)?,
        (false, Some(id)) => {
            ferry_node::init_join(&dir, id)?;
            id
        }
        (false, None) => bail!("give --new-network or --network <ID>"),
    };
    let publisher = dir.publisher_key()?.public();
    let v = json!({
        "network": network.to_string(),
        "publisher": publisher.to_string(),
        "data_dir": g.data_dir.display().to_string(),
    });
    emit(g.json, &v, |_| {
        format!("network: {network}\npublisher: {publisher}")
    })
}

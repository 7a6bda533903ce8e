//! `ferry search`: find packages by name and description words.

use anyhow::Result;

use crate::Global;
use crate::client::{Client, enc};
use crate::output::emit;

/// Arguments of `ferry search`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Words to look for (prefixes match).
    query: String,
    /// Most results.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

/// Runs `ferry search`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let hits: serde_json::Value = client
        .get(&format!("/v1/search?q={}&limit={}", enc(&a.query), a.limit))
        .await?;
    emit(g.json, &hits, |h| {
        let rows = h.as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            return format!("no package matches `{}`", a.query);
        }
        rows.iter()
            .map(|r| {
                format!(
                    "{}@{}  {}",
                    r["package"].as_str().unwrap_or(""),
                    r["version"].as_str().unwrap_or(""),
                    r["description"].as_str().unwrap_or("")
                )
                .trim_end()
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

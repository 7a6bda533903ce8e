//! `ferry search`: find packages by name and description words, and by the interfaces
//! their components export or import.

use anyhow::Result;

use crate::Global;
use crate::client::{Client, enc};
use crate::output::emit;

/// Arguments of `ferry search`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Words to look for (prefixes match); optional with --implements or --imports.
    query: Option<String>,
    /// Only components that export this interface, e.g. `wasi:http/incoming-handler@0.2`.
    #[arg(long, value_name = "IFACE[@REQ]")]
    implements: Option<String>,
    /// Only components that import this interface, e.g. `wasi:keyvalue/store`.
    #[arg(long, value_name = "IFACE[@REQ]")]
    imports: Option<String>,
    /// Only versions matching this requirement, e.g. `^1.2`.
    #[arg(long, value_name = "REQ")]
    version: Option<String>,
    /// Most results.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Search only this network: the node's own or one it mirrors (default: all).
    #[arg(long, value_name = "ID")]
    network: Option<ferry_protocol::NetworkId>,
}

/// Runs `ferry search`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    if a.query.is_none() && a.implements.is_none() && a.imports.is_none() {
        return Err(crate::UsageError(
            "give search words, --implements IFACE or --imports IFACE".into(),
        )
        .into());
    }
    let client = Client::new(&g.data_dir)?;
    let mut path = format!("/v1/search?limit={}", a.limit);
    for (k, v) in [
        ("q", &a.query),
        ("implements", &a.implements),
        ("imports", &a.imports),
        ("version", &a.version),
        ("network", &a.network.map(|n| n.to_string())),
    ] {
        if let Some(v) = v {
            path.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    let hits: serde_json::Value = client.get(&path).await?;
    emit(g.json, &hits, |h| {
        let rows = h.as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            return "no package matches".to_string();
        }
        rows.iter()
            .map(|r| {
                let ifaces: Vec<&str> = r["interfaces"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.as_str())
                    .collect();
                let mut line = format!(
                    "{}@{}  {}",
                    r["package"].as_str().unwrap_or(""),
                    r["version"].as_str().unwrap_or(""),
                    r["description"].as_str().unwrap_or("")
                )
                .trim_end()
                .to_string();
                if !ifaces.is_empty() {
                    line.push_str(&format!("  [{}]", ifaces.join(", ")));
                }
                if r["mirror"].as_bool() == Some(true) {
                    line.push_str(&format!(
                        "  (mirror of {})",
                        r["network"].as_str().unwrap_or("")
                    ));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

//! `ferry info`: a package's versions.

use anyhow::Result;
use ferry_protocol::PackageName;

use crate::Global;
use crate::client::{Client, enc};
use crate::output::{emit, human_size};

/// Arguments of `ferry info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Package name, `namespace:name`.
    package: PackageName,
}

/// Runs `ferry info`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let v: serde_json::Value = client
        .get(&format!("/v1/packages/{}", enc(&a.package.to_string())))
        .await?;
    emit(g.json, &v, |v| {
        let mut out = format!(
            "{} ({})\nlog head: seq {} ({})",
            v["package"].as_str().unwrap_or(""),
            v["kind"].as_str().unwrap_or(""),
            v["head"]["seq"],
            v["head"]["id"].as_str().unwrap_or("")
        );
        for r in v["versions"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\n  {}  {}  {}  signed by {}{}",
                r["version"].as_str().unwrap_or(""),
                human_size(r["size"].as_u64().unwrap_or(0)),
                r["cid"].as_str().unwrap_or(""),
                r["publisher"].as_str().unwrap_or(""),
                r["license"]
                    .as_str()
                    .map(|l| format!("  {l}"))
                    .unwrap_or_default()
            ));
            if let Some(d) = r["description"].as_str() {
                out.push_str(&format!("\n      {d}"));
            }
        }
        out
    })
}

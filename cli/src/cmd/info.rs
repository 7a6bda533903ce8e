//! `ferry info`: a package's versions, signers, yanks, deletions, attestations, forks.

use anyhow::Result;
use ferry_protocol::PackageName;
use serde_json::Value;

use crate::Global;
use crate::client::{Client, enc};
use crate::output::{emit, human_size};

/// Arguments of `ferry info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Package name, `namespace:name`.
    package: PackageName,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Runs `ferry info`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let v: Value = client
        .get(&format!("/v1/packages/{}", enc(&a.package.to_string())))
        .await?;
    emit(g.json, &v, |v| {
        let mut out = format!(
            "{} ({})\nlog head: seq {} ({})",
            s(&v["package"]),
            s(&v["kind"]),
            v["head"]["seq"],
            s(&v["head"]["id"])
        );
        if let Some(d) = v.get("deleted").filter(|d| !d.is_null()) {
            out.push_str(&format!(
                "\nDELETED by the network operator: {}",
                s(&d["reason"])
            ));
        }
        if let Some(f) = v.get("forked").filter(|f| !f.is_null()) {
            out.push_str(&format!(
                "\nFORKED at seq {}: conflicting signed records {}; no release is accepted until an owner runs `ferry fork resolve`",
                f["seq"],
                f["candidates"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", ")
            ));
        }
        for gr in v["grants"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\ngrant: {} may {} (record {})",
                s(&gr["key"]),
                gr["perms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect::<Vec<_>>()
                    .join(", "),
                s(&gr["record"])
            ));
        }
        for r in v["versions"].as_array().into_iter().flatten() {
            let mut flags = String::new();
            if let Some(y) = r.get("yanked").filter(|y| !y.is_null()) {
                flags.push_str(&format!(
                    "  [yanked: {}]",
                    y["reason"].as_str().unwrap_or("no reason given")
                ));
            }
            if let Some(d) = r.get("deleted").filter(|d| !d.is_null()) {
                flags.push_str(&format!("  [deleted: {}]", s(&d["reason"])));
            }
            out.push_str(&format!(
                "\n  {}  {}  {}{}{}",
                s(&r["version"]),
                human_size(r["size"].as_u64().unwrap_or(0)),
                s(&r["cid"]),
                r["license"]
                    .as_str()
                    .map(|l| format!("  {l}"))
                    .unwrap_or_default(),
                flags
            ));
            out.push_str(&format!(
                "\n      signed by {} (authorized by record {})",
                s(&r["publisher"]),
                r["authority"].as_str().unwrap_or("?")
            ));
            if let Some(d) = r["description"].as_str() {
                out.push_str(&format!("\n      {d}"));
            }
            for at in r["attestations"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n      attested by {}: {}",
                    s(&at["key"]),
                    s(&at["claim"])
                ));
            }
        }
        out
    })
}

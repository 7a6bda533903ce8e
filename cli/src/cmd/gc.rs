//! `ferry gc` and `ferry cache`: free blobs nothing holds; list and clear the cache.

use anyhow::{Context, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use crate::Global;
use crate::client::Client;
use crate::output::{emit, human_size};

/// Arguments of `ferry gc`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only report what would be freed.
    #[arg(long)]
    dry_run: bool,
}

/// Subcommands of `ferry cache`.
#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Blobs kept because this node's user fetched them, most recently used first.
    Ls,
    /// Forget every cache entry and free what nothing else holds.
    Clear,
}

/// Runs `ferry gc`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let path = format!("/v1/gc?dry_run={}", a.dry_run);
    let v: Value = client
        .send(client.request(Method::POST, &path))
        .await
        .context("collecting garbage")?
        .json()
        .await?;
    emit(g.json, &v, render_report)
}

/// Runs `ferry cache …`.
pub async fn cache(g: &Global, c: CacheCommand) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    match c {
        CacheCommand::Ls => {
            let v: Value = client.get("/v1/cache").await?;
            emit(g.json, &v, |v| {
                let rows = v["entries"].as_array().cloned().unwrap_or_default();
                if rows.is_empty() {
                    return "the cache is empty".into();
                }
                rows.iter()
                    .map(|r| {
                        let rel: Vec<&str> = r["releases"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_str())
                            .collect();
                        format!(
                            "{}  {}  {}",
                            r["cid"].as_str().unwrap_or(""),
                            human_size(r["bytes"].as_u64().unwrap_or(0)),
                            rel.join(", ")
                        )
                        .trim_end()
                        .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        CacheCommand::Clear => {
            let v: Value = client
                .send(client.request(Method::DELETE, "/v1/cache"))
                .await
                .context("clearing the cache")?
                .json()
                .await?;
            emit(g.json, &v, render_report)
        }
    }
}

fn render_report(v: &Value) -> String {
    let count = v["count"].as_u64().unwrap_or(0);
    let bytes = human_size(v["bytes"].as_u64().unwrap_or(0));
    let kept = human_size(v["kept_bytes"].as_u64().unwrap_or(0));
    let verb = if v["dry_run"].as_bool() == Some(true) {
        "would free"
    } else {
        "freed"
    };
    let mut out = format!("{verb} {count} blobs ({bytes}); {kept} kept");
    if let Some(b) = v["budget"].as_u64() {
        out.push_str(&format!(" (budget {})", human_size(b)));
        if v["over_budget"].as_bool() == Some(true) {
            out.push_str(", still over budget: everything left is pinned, published or in use");
        }
    }
    let in_use = v["in_use"].as_u64().unwrap_or(0);
    if in_use > 0 {
        out.push_str(&format!("; {in_use} kept because they were being read"));
    }
    out
}

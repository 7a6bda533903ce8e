//! `ferry pin`: choose what this node replicates on its own.

use anyhow::{Context, Result};
use clap::Subcommand;
use ferry_protocol::PublicKey;
use ferry_protocol::filter::{Filter, Pattern};
use ferry_protocol::pin::Pin;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Global;
use crate::client::{Client, enc};
use crate::output::{emit, human_size};

/// Subcommands of `ferry pin`.
#[derive(Subcommand, Debug)]
pub enum PinCommand {
    /// Pin every package a glob matches (`acme:*`, `wasi:http`, `*:http-*`): the node
    /// follows their logs, fetches and serves their blobs and keeps them. Pinning a
    /// pattern again replaces its filters.
    Add {
        /// Glob over `namespace:name`; a bare namespace means all of it.
        pattern: Pattern,
        /// Leave out packages this glob matches (repeatable).
        #[arg(long = "exclude", value_name = "PATTERN")]
        exclude: Vec<Pattern>,
        /// Only releases with this SPDX license expression, compared exactly
        /// (repeatable: any of them).
        #[arg(long = "license", value_name = "SPDX")]
        licenses: Vec<String>,
        /// Only releases signed by this key (repeatable: any of them).
        #[arg(long = "signer", value_name = "KEY")]
        signers: Vec<PublicKey>,
        /// Only blobs up to this size, e.g. `20MiB`.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
    },
    /// List pins, with how many releases each covers and how many of their blobs are
    /// stored here.
    Ls,
    /// Remove a pin. Its blobs stay until `ferry gc` (or the disk budget) frees them.
    Rm {
        /// The pattern, as given to `pin add`.
        pattern: Pattern,
    },
}

/// Parses a size such as `2GiB`, `500MB` or `1048576` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{s}` is not a size (e.g. 512MiB, 2GiB): {e}"))
}

/// Runs `ferry pin …`.
pub async fn run(g: &Global, c: PinCommand) -> Result<()> {
    match c {
        PinCommand::Add {
            pattern,
            exclude,
            licenses,
            signers,
            max_size,
        } => {
            // The same check the node makes, so a bad license is a usage error here.
            let filter = Filter {
                include: vec![pattern.clone()],
                exclude,
                licenses: (!licenses.is_empty()).then_some(licenses),
                signers: (!signers.is_empty()).then_some(signers),
                max_size,
            };
            Pin::try_from(filter.clone()).map_err(|e| crate::UsageError(e.to_string()))?;
            let client = Client::new(&g.data_dir)?;
            let body = json!({
                "pattern": pattern.to_string(),
                "exclude": filter.exclude.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "licenses": filter.licenses.clone().unwrap_or_default(),
                "signers": filter.signers.iter().flatten().map(|k| k.to_string()).collect::<Vec<_>>(),
                "max_size": filter.max_size,
            });
            let v: Value = client
                .send(client.request(Method::POST, "/v1/pins").json(&body))
                .await
                .with_context(|| format!("pinning {pattern}"))?
                .json()
                .await?;
            emit(g.json, &v, |v| {
                if v["replaced"].as_bool() == Some(true) {
                    format!("updated pin {pattern}")
                } else {
                    format!("pinned {pattern}")
                }
            })
        }
        PinCommand::Ls => {
            let client = Client::new(&g.data_dir)?;
            let v: Value = client.get("/v1/pins").await?;
            emit(g.json, &v, render_list)
        }
        PinCommand::Rm { pattern } => {
            let client = Client::new(&g.data_dir)?;
            let path = format!("/v1/pins?pattern={}", enc(&pattern.to_string()));
            let v: Value = client
                .send(client.request(Method::DELETE, &path))
                .await
                .with_context(|| format!("unpinning {pattern}"))?
                .json()
                .await?;
            emit(g.json, &v, |_| {
                format!("unpinned {pattern} (its blobs stay until `ferry gc`)")
            })
        }
    }
}

fn render_list(v: &Value) -> String {
    let pins = v["pins"].as_array().cloned().unwrap_or_default();
    if pins.is_empty() {
        return "no pins: this node follows every log and keeps only what its user fetches".into();
    }
    let n = |p: &Value, k: &str| p[k].as_u64().unwrap_or(0);
    pins.iter()
        .map(|p| {
            let mut line = format!(
                "{}  {} releases, {}/{} blobs stored ({} of {})",
                p["pattern"].as_str().unwrap_or(""),
                n(p, "releases"),
                n(p, "stored"),
                n(p, "blobs"),
                human_size(n(p, "stored_bytes")),
                human_size(n(p, "bytes")),
            );
            let list = |k: &str| -> Vec<String> {
                p[k].as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            };
            for (k, label) in [
                ("exclude", "exclude"),
                ("licenses", "licenses"),
                ("signers", "signers"),
            ] {
                let items = list(k);
                if !items.is_empty() {
                    line.push_str(&format!("\n  {label}: {}", items.join(", ")));
                }
            }
            if let Some(m) = p["max_size"].as_u64() {
                line.push_str(&format!("\n  max size: {}", human_size(m)));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

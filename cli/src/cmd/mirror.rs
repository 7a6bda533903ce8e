//! `ferry mirror`: live mirrors of a filtered subset of another network (add, ls, rm),
//! and snapshots (export, import).
//!
//! Every subcommand goes through the running node's API when there is one (the node
//! holds the index open); otherwise they open the data directory themselves, so a node
//! that was never started, on a machine without any network, can load a snapshot.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use ferry_node::data_dir::DataDir;
use ferry_node::mirror::{self, MirrorConfig};
use ferry_node::snapshot::{self, Manifest};
use ferry_protocol::NetworkId;
use ferry_protocol::filter::{Filter, Pattern};
use reqwest::Method;
use serde_json::json;

use crate::Global;
use crate::client::Client;
use crate::output::{emit, human_size};

/// Subcommands of `ferry mirror`.
#[derive(Subcommand, Debug)]
pub enum MirrorCommand {
    /// Follow a filtered subset of another network live and serve it: to this node's
    /// users (search, info and fetch answer from mirrors too) and to that network's
    /// peers. Takes effect at once on a running node, else at its next start.
    Add(AddArgs),
    /// List mirrors: network, filter, bootstrap peers, state and listen addresses.
    Ls,
    /// Stop mirroring a network and delete the mirror's index (its blobs stay until
    /// `ferry gc` frees them).
    Rm {
        /// The mirrored network's id.
        network: NetworkId,
    },
    /// Write a snapshot of the packages a filter covers (their logs, the operator log,
    /// and the blobs this node holds) into a new directory.
    Export(ExportArgs),
    /// Load a snapshot into this node after verifying every record and blob in it;
    /// needs no network. Nothing is stored unless all of it verifies.
    Import(ImportArgs),
}

/// Arguments of `ferry mirror add`.
#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The network to mirror (the id its nodes print in `ferry node status`).
    #[arg(long, value_name = "ID")]
    network: NetworkId,
    /// A peer of that network to connect to (repeatable), ending in /p2p/<peer id>.
    #[arg(long = "bootstrap", value_name = "MULTIADDR", required = true)]
    bootstrap: Vec<ferry_node::Multiaddr>,
    /// Packages to follow (repeatable): a glob over `ns:name`, e.g. `wasi:*`.
    #[arg(long = "filter", value_name = "PATTERN", required = true)]
    filter: Vec<Pattern>,
    /// Packages to leave out even when a --filter includes them (repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
    exclude: Vec<Pattern>,
}

/// Arguments of `ferry mirror export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Packages to include (repeatable): a glob over `ns:name`, e.g. `wasi:*`,
    /// `acme:http-*`; a bare namespace means all of it.
    #[arg(long = "filter", value_name = "PATTERN", required = true)]
    filter: Vec<Pattern>,
    /// Packages to leave out even when a --filter includes them (repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
    exclude: Vec<Pattern>,
    /// Directory to write; created if needed, and it must be empty.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    /// Export from this node's mirror of that network instead of its own network.
    #[arg(long, value_name = "ID")]
    network: Option<NetworkId>,
}

/// Arguments of `ferry mirror import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A directory written by `ferry mirror export`.
    dir: PathBuf,
}

/// Runs `ferry mirror …`.
pub async fn run(g: &Global, c: MirrorCommand) -> Result<()> {
    match c {
        MirrorCommand::Add(a) => add(g, a).await,
        MirrorCommand::Ls => list(g).await,
        MirrorCommand::Rm { network } => remove(g, network).await,
        MirrorCommand::Export(a) => export(g, a).await,
        MirrorCommand::Import(a) => import(g, a).await,
    }
}

/// The running node's client, if a node is running for this data directory.
async fn running(g: &Global) -> Option<Client> {
    let client = Client::new(&g.data_dir).ok()?;
    client
        .get::<serde_json::Value>("/v1/status")
        .await
        .ok()
        .map(|_| client)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

fn offline_storage(
    g: &Global,
    network: Option<NetworkId>,
) -> Result<(ferry_node::index::Index, ferry_node::blob_store::BlobStore)> {
    let dir = DataDir::open(&g.data_dir)?;
    snapshot::open_offline(&dir, network).with_context(|| {
        format!(
            "opening {} (no running node answered; if one is starting, try again)",
            g.data_dir.display()
        )
    })
}

async fn export(g: &Global, a: ExportArgs) -> Result<()> {
    let out = absolute(&a.output)?;
    let filter = Filter {
        exclude: a.exclude,
        ..Filter::new(a.filter)
    };
    let manifest: Result<Manifest> = match running(g).await {
        Some(client) => {
            let req = client
                .request(Method::POST, "/v1/snapshot/export")
                .json(&json!({
                    "dir": out.display().to_string(),
                    "filter": filter,
                    "network": a.network.map(|n| n.to_string()),
                }));
            match client.send(req).await {
                Ok(resp) => resp.json().await.context("decoding the node's answer"),
                Err(e) => Err(e),
            }
        }
        None => {
            let (index, blobs) = offline_storage(g, a.network)?;
            let now = ferry_node::node::now_ms();
            tokio::task::spawn_blocking(move || {
                snapshot::export(&index, &blobs, &filter, &out, now)
            })
            .await?
            .map_err(anyhow::Error::from)
        }
    };
    let manifest =
        manifest.with_context(|| format!("exporting a snapshot to {}", a.output.display()))?;
    emit(g.json, &manifest, |m| {
        let bytes: u64 = m.blobs.iter().map(|b| b.size).sum();
        let mut text = format!(
            "exported {} packages ({} records, {} blobs, {}) of network {} to {}",
            m.packages.len(),
            m.records.count,
            m.blobs.len(),
            human_size(bytes),
            m.network,
            a.output.display()
        );
        for miss in &m.missing {
            text.push_str(&format!(
                "\nmissing: {} ({}@{} {}): {}",
                miss.blob.cid, miss.blob.package, miss.blob.version, miss.blob.role, miss.reason
            ));
        }
        text
    })
}

async fn import(g: &Global, a: ImportArgs) -> Result<()> {
    let dir = absolute(&a.dir)?;
    let context = || format!("importing the snapshot {}", a.dir.display());
    let imported: serde_json::Value = match running(g).await {
        Some(client) => {
            let req = client
                .request(Method::POST, "/v1/snapshot/import")
                .json(&json!({ "dir": dir.display().to_string() }));
            client
                .send(req)
                .await
                .with_context(context)?
                .json()
                .await
                .context("decoding the node's answer")?
        }
        None => {
            let snap = tokio::task::spawn_blocking(move || snapshot::Snapshot::open(&dir))
                .await?
                .map_err(|e| anyhow::anyhow!("snapshot refused, nothing was imported: {e}"))
                .with_context(context)?;
            // A snapshot of a network this node mirrors goes into that mirror's index.
            let (index, blobs) = offline_storage(g, Some(snap.network()))?;
            let now = ferry_node::node::now_ms();
            let r = tokio::task::spawn_blocking(move || snap.import(&index, &blobs, now))
                .await?
                .map_err(|e| anyhow::anyhow!("snapshot refused, nothing was imported: {e}"))
                .with_context(context)?;
            serde_json::to_value(&r)?
        }
    };
    emit(g.json, &imported, |v| {
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        let mut text = format!(
            "imported {}: {} records ({} new), {} blobs stored ({} already here), packages: {}",
            a.dir.display(),
            n("records"),
            n("new_records"),
            v["new_blobs"].as_array().map_or(0, |b| b.len()),
            n("known_blobs"),
            v["packages"]
                .as_array()
                .map(|p| p
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
        if n("missing_blobs") > 0 {
            text.push_str(&format!(
                "\n{} covered blobs were not in the snapshot (the exporter lacked them); fetch them from peers",
                n("missing_blobs")
            ));
        }
        text
    })
}

async fn add(g: &Global, a: AddArgs) -> Result<()> {
    let config = MirrorConfig {
        network: a.network,
        bootstrap: a.bootstrap.iter().map(|b| b.to_string()).collect(),
        filter: Filter {
            exclude: a.exclude,
            ..Filter::new(a.filter)
        },
        added_ms: ferry_node::node::now_ms(),
    };
    let context = || format!("adding a mirror of network {}", a.network);
    let v: serde_json::Value = match running(g).await {
        Some(client) => client
            .send(client.request(Method::POST, "/v1/mirrors").json(&json!({
                "network": config.network,
                "bootstrap": config.bootstrap,
                "filter": config.filter,
            })))
            .await
            .with_context(context)?
            .json()
            .await
            .context("decoding the node's answer")?,
        None => {
            let dir = DataDir::open(&g.data_dir)?;
            let replaced = mirror::add(&dir, config.clone()).with_context(context)?;
            json!({ "mirror": config, "replaced": replaced, "running": false })
        }
    };
    emit(g.json, &v, |v| {
        let m = &v["mirror"];
        let when = if v["running"].as_bool() == Some(true) {
            "following it now"
        } else {
            "takes effect at the next `ferry node start`"
        };
        format!(
            "{} mirror of network {} ({}): {when}",
            if v["replaced"].as_bool() == Some(true) {
                "updated"
            } else {
                "added"
            },
            m["network"].as_str().unwrap_or(""),
            patterns(&m["filter"])
        )
    })
}

/// `wasi:*, acme:http (except acme:secret)` for a filter's JSON.
fn patterns(filter: &serde_json::Value) -> String {
    let list = |k: &str| -> Vec<&str> {
        filter[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
            .collect()
    };
    let mut text = list("include").join(", ");
    let exclude = list("exclude");
    if !exclude.is_empty() {
        text.push_str(&format!(" (except {})", exclude.join(", ")));
    }
    text
}

async fn list(g: &Global) -> Result<()> {
    let v: serde_json::Value = match running(g).await {
        Some(client) => client.get("/v1/mirrors").await?,
        None => {
            let dir = DataDir::open(&g.data_dir)?;
            let list: Vec<serde_json::Value> = mirror::load(&dir)?
                .into_iter()
                .map(|m| {
                    let mut v = serde_json::to_value(&m).unwrap_or_default();
                    v["running"] = json!(false);
                    v
                })
                .collect();
            json!({ "mirrors": list })
        }
    };
    emit(g.json, &v, |v| {
        let rows = v["mirrors"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            return "no mirrors (add one with `ferry mirror add --network ID --bootstrap ADDR --filter PATTERN`)".into();
        }
        let mut out = Vec::new();
        for m in rows {
            let state = if m["running"].as_bool() == Some(true) {
                format!(
                    "running, {} peers, {} packages, {} blobs",
                    m["peers"], m["packages"], m["blobs"]
                )
            } else if let Some(e) = m["error"].as_str() {
                format!("failed: {e}")
            } else {
                "not running".into()
            };
            let mut text = format!(
                "{}  {}  [{state}]",
                m["network"].as_str().unwrap_or(""),
                patterns(&m["filter"])
            );
            for b in m["bootstrap"].as_array().into_iter().flatten() {
                text.push_str(&format!("\n  bootstrap: {}", b.as_str().unwrap_or("")));
            }
            for a in m["addrs"].as_array().into_iter().flatten() {
                text.push_str(&format!("\n  listening: {}", a.as_str().unwrap_or("")));
            }
            out.push(text);
        }
        out.join("\n")
    })
}

async fn remove(g: &Global, network: NetworkId) -> Result<()> {
    let context = || format!("removing the mirror of network {network}");
    let v: serde_json::Value = match running(g).await {
        Some(client) => client
            .send(client.request(Method::DELETE, &format!("/v1/mirrors/{network}")))
            .await
            .with_context(context)?
            .json()
            .await
            .context("decoding the node's answer")?,
        None => {
            let dir = DataDir::open(&g.data_dir)?;
            let gone = mirror::remove(&dir, &network).with_context(context)?;
            json!({ "removed": gone })
        }
    };
    emit(g.json, &v, |_| {
        format!("removed the mirror of network {network}; `ferry gc` frees its blobs")
    })
}

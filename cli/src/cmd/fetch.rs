//! `ferry fetch`: get a package's bytes through the node, verified before they land.
//!
//! The node's blob store is the user's cache, shared by every project: content it
//! already holds is hashed again and handed out with no network transfer. Killing
//! `ferry fetch` does not stop the node's download: the node keeps it going into the
//! cache, so running the command again finds the blob there or joins the download.
//! With `--with-assets`, the release's assets tree is recreated under the output
//! directory, every file checked against the signed tree.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_protocol::{ContentId, Spec};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, enc};
use crate::output::{emit, human_size};
use crate::{Global, UsageError, assets, blob};

/// Arguments of `ferry fetch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `ns:name`, `ns:name@REQ` (a bare X.Y.Z means exactly that version), a CID, or sha256:<hex>.
    spec: Spec,
    /// Where to write the file. Default: `<name>-<version>.wasm` in the current
    /// directory. With --with-assets: the directory to recreate the assets in; the
    /// component goes into it as `<name>-<version>.wasm`.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Refuse the release unless this key attested it (e.g. your reviewers' key).
    #[arg(long, value_name = "PUBKEY")]
    require_attestation: Option<ferry_protocol::PublicKey>,
    /// Fetch from this network only: the node's own or one it mirrors (default: its
    /// own, then its mirrors).
    #[arg(long, value_name = "ID")]
    network: Option<ferry_protocol::NetworkId>,
    /// Also fetch the release's assets tree and recreate it exactly under -o DIR.
    #[arg(long, requires = "output")]
    with_assets: bool,
}

fn bar(show: bool, len: u64, msg: String) -> Option<indicatif::ProgressBar> {
    show.then(|| {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(msg);
        b
    })
}

/// Runs `ferry fetch`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = Client::new(&g.data_dir)?;
    let spec_text = match &a.spec {
        Spec::Package(n, w) => format!("{n}@{w}"),
        Spec::Content(c) => c.to_string(),
    };
    let mut query = format!("/v1/resolve?spec={}", enc(&spec_text));
    if let Some(k) = &a.require_attestation {
        query.push_str(&format!("&require_attestation={}", enc(&k.to_string())));
    }
    // Resolution says which network answered; the fetch then asks that one.
    if let Some(n) = &a.network {
        query.push_str(&format!("&network={}", enc(&n.to_string())));
    }
    let resolved: Value = client
        .get(&query)
        .await
        .with_context(|| format!("resolving {spec_text}"))?;
    let cid: ContentId = resolved["cid"].as_str().unwrap_or("").parse()?;
    let size = resolved["size"].as_u64().unwrap_or(0);
    let package = resolved["package"].as_str().unwrap_or("").to_string();
    let version = resolved["version"].as_str().unwrap_or("").to_string();
    let network = resolved["network"].as_str().map(String::from);
    let announced = &resolved["attachments"]["assets"];
    if a.with_assets && announced.is_null() {
        return Err(UsageError(format!(
            "{package}@{version} was published without assets: drop --with-assets"
        ))
        .into());
    }

    if let Some(y) = resolved.get("yanked").filter(|y| !y.is_null()) {
        eprintln!(
            "warning: {package}@{version} is yanked ({}); fetching it because it was asked for exactly",
            y["reason"].as_str().unwrap_or("no reason given")
        );
    }
    // Progress only for a person at a terminal; never with --json.
    let show_bar = !g.json && std::io::stderr().is_terminal();
    let bar1 = bar(show_bar, size, format!("{package}@{version}"));
    // Ask the node to hold the blob; show its progress while it downloads.
    let fetch = client.send(
        client
            .request(Method::POST, "/v1/fetch")
            .json(&json!({ "spec": cid.to_string(), "network": network })),
    );
    tokio::pin!(fetch);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let fetched: Value = loop {
        tokio::select! {
            r = &mut fetch => {
                let r = r.with_context(|| format!("fetching {package}@{version} ({cid})"))?;
                break r.json().await.unwrap_or(Value::Null);
            }
            _ = tick.tick() => {
                if let Some(b) = &bar1
                    && let Ok(p) = client.get::<Value>(&format!("/v1/progress/{cid}")).await {
                    b.set_position(p["done"].as_u64().unwrap_or(0));
                }
            }
        }
    };

    let file_name = format!(
        "{}-{version}.wasm",
        package.split(':').nth(1).unwrap_or("blob")
    );
    let out = match (&a.output, a.with_assets) {
        (Some(dir), true) => dir.join(&file_name),
        (Some(o), false) => o.clone(),
        (None, _) => PathBuf::from(&file_name),
    };
    // With assets, everything is fetched and checked before the first file is written.
    let tree = if a.with_assets {
        let dir = a.output.as_deref().unwrap_or(Path::new("."));
        let at = (package.as_str(), version.as_str(), network.as_deref());
        Some(fetch_tree(&client, at, announced, &file_name, dir).await?)
    } else {
        None
    };
    blob::save(&client, &cid, size, &out, None, |n| {
        if let Some(b) = &bar1 {
            b.set_position(n);
        }
    })
    .await
    .with_context(|| format!("saving {package}@{version}"))?;
    if let Some(b) = bar1 {
        b.finish_and_clear();
    }
    let mut v = json!({
        "path": out.display().to_string(),
        "cid": cid.to_string(),
        "size": size,
        "package": package,
        "version": version,
        "sha256": cid.to_sha256(),
        "yanked": resolved.get("yanked").cloned().unwrap_or(Value::Null),
        "network": network,
        "cache": fetched["cache"],
        "download": fetched["download"],
    });
    if let (Some(tree), Some(dir)) = (tree, &a.output) {
        write_assets(&client, &tree, dir, show_bar).await?;
        v["assets"] = json!({
            "dir": dir.display().to_string(),
            "files": tree.files(),
            "bytes": tree.bytes(),
            "tree": announced["cid"],
        });
    }
    emit(g.json, &v, |v| {
        let from = match v["cache"].as_str() {
            Some("hit") => ", from the cache",
            Some("repaired") => ", the cached copy was corrupt and was fetched again",
            _ => "",
        };
        let mut text = format!(
            "fetched {package}@{version} -> {} ({cid}, verified{from})",
            out.display()
        );
        if let Some(x) = v.get("assets") {
            text.push_str(&format!(
                "\nassets: {} files, {} -> {} (verified)",
                x["files"],
                human_size(x["bytes"].as_u64().unwrap_or(0)),
                x["dir"].as_str().unwrap_or("")
            ));
        }
        text
    })
}

/// Makes the node hold the assets, then reads the tree itself and checks it against the
/// signed release (the node is not trusted to have done so).
async fn fetch_tree(
    client: &Client,
    (package, version, network): (&str, &str, Option<&str>),
    announced: &Value,
    component_file: &str,
    dir: &Path,
) -> Result<ferry_protocol::assets::AssetTree> {
    let exact = format!("{package}@{version}");
    client
        .send(
            client
                .request(Method::POST, "/v1/assets")
                .json(&json!({ "spec": exact, "network": network })),
        )
        .await
        .with_context(|| format!("fetching the assets of {exact}"))?;
    let tree_cid: ContentId = announced["cid"].as_str().unwrap_or("").parse()?;
    let tree = assets::load_tree(
        client,
        &tree_cid,
        announced["files"].as_u64().unwrap_or(0),
        announced["bytes"].as_u64().unwrap_or(0),
    )
    .await
    .with_context(|| format!("the assets of {exact}"))?;
    if tree.entries.iter().any(|e| e.path == component_file) {
        anyhow::bail!(
            "the assets of {exact} hold a file named {component_file}, where the component goes: nothing was written to {}",
            dir.display()
        );
    }
    Ok(tree)
}

/// Writes every file of a checked tree under `dir`.
async fn write_assets(
    client: &Client,
    tree: &ferry_protocol::assets::AssetTree,
    dir: &Path,
    show_bar: bool,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let b = bar(show_bar, tree.bytes(), "assets".into());
    let mut done = 0u64;
    for e in &tree.entries {
        let path = assets::target(dir, &e.path)?;
        let base = done;
        blob::save(client, &e.content, e.size, &path, Some(e.executable), |n| {
            if let Some(b) = &b {
                b.set_position(base + n);
            }
        })
        .await
        .with_context(|| format!("saving asset `{}`", e.path))?;
        done += e.size;
    }
    if let Some(b) = b {
        b.finish_and_clear();
    }
    Ok(())
}

//! `ferry fetch`: get a package's bytes through the node, verified before they land.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_protocol::{ContentId, Spec};
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use sha2::Digest;

use crate::Global;
use crate::client::{Client, enc};
use crate::output::emit;

/// Arguments of `ferry fetch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `ns:name`, `ns:name@REQ` (a bare X.Y.Z means exactly that version), a CID, or sha256:<hex>.
    spec: Spec,
    /// Where to write the file. Default: `<name>-<version>.wasm` in the current directory.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Refuse the release unless this key attested it (e.g. your reviewers' key).
    #[arg(long, value_name = "PUBKEY")]
    require_attestation: Option<ferry_protocol::PublicKey>,
    /// Fetch from this network only: the node's own or one it mirrors (default: its
    /// own, then its mirrors).
    #[arg(long, value_name = "ID")]
    network: Option<ferry_protocol::NetworkId>,
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
    let resolved: serde_json::Value = client
        .get(&query)
        .await
        .with_context(|| format!("resolving {spec_text}"))?;
    let cid: ContentId = resolved["cid"].as_str().unwrap_or("").parse()?;
    let size = resolved["size"].as_u64().unwrap_or(0);
    let package = resolved["package"].as_str().unwrap_or("").to_string();
    let version = resolved["version"].as_str().unwrap_or("").to_string();
    let network = resolved["network"].as_str().map(String::from);

    if let Some(y) = resolved.get("yanked").filter(|y| !y.is_null()) {
        eprintln!(
            "warning: {package}@{version} is yanked ({}); fetching it because it was asked for exactly",
            y["reason"].as_str().unwrap_or("no reason given")
        );
    }
    let show_bar = !g.json && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(format!("{package}@{version}"));
        b
    });
    // Ask the node to hold the blob; show its progress while it downloads.
    let fetch = client.send(
        client
            .request(Method::POST, "/v1/fetch")
            .json(&json!({ "spec": cid.to_string(), "network": network })),
    );
    tokio::pin!(fetch);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            r = &mut fetch => { r.with_context(|| format!("fetching {package}@{version} ({cid})"))?; break; }
            _ = tick.tick() => {
                if let Some(b) = &bar
                    && let Ok(p) = client.get::<serde_json::Value>(&format!("/v1/progress/{cid}")).await {
                    b.set_position(p["done"].as_u64().unwrap_or(0));
                }
            }
        }
    }

    let out = a.output.unwrap_or_else(|| {
        let name = package.split(':').nth(1).unwrap_or("blob");
        PathBuf::from(format!("{name}-{version}.wasm"))
    });
    // Stream into a temp file beside the target, hashing as we go; rename only if the
    // bytes are the ones the signed release names.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.ferry-partial",
        out.file_name().and_then(|f| f.to_str()).unwrap_or("fetch")
    ));
    let resp = client
        .send(client.request(Method::GET, &format!("/v1/blobs/{cid}")))
        .await?;
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut written = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading the blob from the node")?;
        hasher.update(&chunk);
        file.write_all(&chunk)
            .with_context(|| format!("writing {}", tmp.display()))?;
        written += chunk.len() as u64;
        if let Some(b) = &bar {
            b.set_position(written.min(size));
        }
    }
    file.sync_all()?;
    drop(file);
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != *cid.digest() || written != size {
        let _ = std::fs::remove_file(&tmp);
        bail!("the bytes received for {package}@{version} do not match {cid}: nothing was written");
    }
    std::fs::rename(&tmp, &out).with_context(|| format!("moving the file to {}", out.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let v = json!({
        "path": out.display().to_string(),
        "cid": cid.to_string(),
        "size": size,
        "package": package,
        "version": version,
        "sha256": cid.to_sha256(),
        "yanked": resolved.get("yanked").cloned().unwrap_or(serde_json::Value::Null),
        "network": network,
    });
    emit(g.json, &v, |_| {
        format!(
            "fetched {package}@{version} -> {} ({cid}, verified)",
            out.display()
        )
    })
}

//! What the project commands (`lock`, `update`, `install`, `wit fetch`) ask the
//! local node: resolve a spec to one release, and download content verified.
//!
//! Downloads go through the node: `POST /v1/fetch` makes it hold the blob (it
//! fetches from peers chunk by chunk, each chunk checked against the signed
//! release), then `GET /v1/blobs/{cid}` streams it here, where it is hashed again
//! before anything is written, so a wrong byte never lands in a project.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use ferry_protocol::ContentId;
use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;

use crate::client::{Client, enc};

/// A yank notice as the node shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Yank {
    /// Why, if the yanker said.
    pub reason: Option<String>,
}

/// The release a spec resolved to.
#[derive(Debug, Clone, Deserialize)]
pub struct Resolved {
    /// `ns:name`.
    pub package: String,
    /// Its version.
    pub version: semver::Version,
    /// Its content.
    pub cid: ContentId,
    /// Set when the version is yanked (only exact specs resolve to one).
    pub yanked: Option<Yank>,
}

impl Resolved {
    /// The yank reason, or a placeholder, for warnings.
    pub fn yank_reason(&self) -> Option<&str> {
        self.yanked
            .as_ref()
            .map(|y| y.reason.as_deref().unwrap_or("no reason given"))
    }
}

/// Asks the node which release `spec` names (404: unknown, 410: deleted).
pub async fn resolve(client: &Client, spec: &str) -> Result<Resolved> {
    client.get(&format!("/v1/resolve?spec={}", enc(spec))).await
}

/// Makes the node hold `cid`, fetching it from peers if it has to.
pub async fn hold(client: &Client, cid: &ContentId) -> Result<()> {
    client
        .send(
            client
                .request(Method::POST, "/v1/fetch")
                .json(&json!({ "spec": cid.to_string() })),
        )
        .await?;
    Ok(())
}

/// Streams `cid` from the node into `sink`, returning its SHA-256 and length.
/// Stops with an error past `max` bytes.
async fn stream(
    client: &Client,
    cid: &ContentId,
    max: u64,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<([u8; 32], u64)> {
    let resp = client
        .send(client.request(Method::GET, &format!("/v1/blobs/{cid}")))
        .await?;
    let mut hasher = sha2::Sha256::new();
    let mut len = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading the content from the node")?;
        len += chunk.len() as u64;
        if len > max {
            bail!("{cid} is larger than {max} bytes");
        }
        hasher.update(&chunk);
        sink(&chunk)?;
    }
    Ok((hasher.finalize().into(), len))
}

/// Downloads `cid` into memory (at most `max` bytes), verified.
pub async fn to_bytes(client: &Client, cid: &ContentId, max: u64) -> Result<Vec<u8>> {
    hold(client, cid).await?;
    let mut out = Vec::new();
    let (digest, _) = stream(client, cid, max, |c| {
        out.extend_from_slice(c);
        Ok(())
    })
    .await?;
    if digest != *cid.digest() {
        bail!("the bytes the node sent do not hash to {cid}: nothing was written");
    }
    Ok(out)
}

/// Downloads `cid` to `out` (created with its folders), verified before the file
/// appears: it is written to a temporary file beside `out` and renamed.
pub async fn to_file(client: &Client, cid: &ContentId, out: &Path) -> Result<u64> {
    hold(client, cid).await?;
    let dir = out
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent folder", out.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let (digest, len) = stream(
        client,
        cid,
        ferry_protocol::component::MAX_PACKAGE_BYTES,
        |c| {
            tmp.write_all(c)
                .with_context(|| format!("writing into {}", dir.display()))
        },
    )
    .await?;
    if digest != *cid.digest() {
        bail!("the bytes the node sent do not hash to {cid}: nothing was written");
    }
    tmp.as_file().sync_all()?;
    tmp.persist(out)
        .map_err(|e| e.error)
        .with_context(|| format!("moving the download to {}", out.display()))?;
    Ok(len)
}

/// SHA-256 of a file on disk, or None when it cannot be read.
pub fn file_digest(path: &Path) -> Option<[u8; 32]> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(h.finalize().into())
}

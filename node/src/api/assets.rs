//! Assets: checking a tree at publish, and fetching a release's tree and every file in
//! it.
//!
//! A tree is checked wherever it enters: at publish (every rule of
//! [`ferry_protocol::assets`], and every file it lists must be stored here with exactly
//! the listed size and chunk digests), when a record signed elsewhere is submitted with
//! its tree already stored, and when a node downloads a release's tree (it must also
//! match the file count and total size the release signed). A tree that fails is
//! refused with the rule it broke and removed from the store; its files are never
//! fetched.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ferry_protocol::assets::{AssetTree, MAX_TREE_BYTES};
use ferry_protocol::record::{AssetsRef, Attachment, Release};
use ferry_protocol::{ContentId, chunk};
use futures::StreamExt;
use serde::Deserialize;
use serde_bytes::ByteBuf;
use serde_json::json;

use super::fetch::ensure_local;
use super::view::resolve_spec;
use super::{ApiError, AppState, bad, blocking, not_found};
use crate::index::ReleaseEntry;
use crate::node::Shared;

/// Asset files downloaded at once.
const PARALLEL_FILES: usize = 8;

fn refused(msg: String) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

/// Reads a stored tree blob of at most [`MAX_TREE_BYTES`].
fn read_tree_bytes(shared: &Shared, id: &ContentId) -> Result<Vec<u8>, ApiError> {
    let size = shared.blobs.size(id).ok_or_else(|| {
        bad(format!(
            "the assets tree {id} is not stored on this node: upload it with POST /v1/blobs first"
        ))
    })?;
    if size > MAX_TREE_BYTES {
        return Err(refused(format!(
            "the assets tree {id} is {size} bytes, over the {MAX_TREE_BYTES}-byte limit"
        )));
    }
    shared
        .blobs
        .read_range(id, 0, size)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Checks an uploaded tree for a publish and returns what the release will carry, and
/// the file blobs to announce.
pub(super) fn publish_ref(
    shared: &Shared,
    cid: &str,
) -> Result<(AssetsRef, Vec<ContentId>), ApiError> {
    let id: ContentId = cid.parse().map_err(bad)?;
    let bytes = read_tree_bytes(shared, &id)?;
    let tree = AssetTree::decode(&bytes)
        .map_err(|e| refused(format!("the assets tree {id} is refused: {e}")))?;
    let mut files = Vec::new();
    for e in tree.entries.iter().filter(|e| e.size > 0) {
        let missing = || {
            bad(format!(
                "asset `{}` ({}) is not stored on this node: upload it with POST /v1/blobs first",
                e.path, e.content
            ))
        };
        if shared.blobs.size(&e.content) != Some(e.size) {
            return Err(missing());
        }
        let digests = shared
            .blobs
            .chunk_digests(&e.content)
            .map_err(|_| missing())?;
        if digests != e.chunks.as_slice() {
            return Err(refused(format!(
                "asset `{}`: the tree's chunk digests do not match its bytes",
                e.path
            )));
        }
        files.push(e.content);
    }
    let r = AssetsRef {
        tree: Attachment {
            content: id,
            size: bytes.len() as u64,
            chunks: ByteBuf::from(chunk::digests(&bytes, chunk::CHUNK_SIZE)),
        },
        files: tree.files(),
        bytes: tree.bytes(),
    };
    Ok((r, files))
}

/// For a release signed elsewhere and submitted here: if its tree is already stored,
/// it must pass as it would on download.
pub(super) fn check_submitted(shared: &Shared, log: &str, rel: &Release) -> Result<(), ApiError> {
    let Some(r) = &rel.attachments.assets else {
        return Ok(());
    };
    if !shared.blobs.has(&r.tree.content) {
        return Ok(());
    }
    let bytes = read_tree_bytes(shared, &r.tree.content)?;
    AssetTree::decode(&bytes)
        .and_then(|t| t.check_against(r))
        .map_err(|e| {
            refused(format!(
                "{log}@{} refused: its assets tree {} is invalid: {e}",
                rel.version, r.tree.content
            ))
        })
}

/// Reads a downloaded tree and checks it against its release; a tree that breaks a
/// rule is removed and refused.
fn load_tree(shared: &Shared, entry: &ReleaseEntry, r: &AssetsRef) -> Result<AssetTree, ApiError> {
    let id = r.tree.content;
    let bytes = read_tree_bytes(shared, &id)?;
    match AssetTree::decode(&bytes).and_then(|t| t.check_against(r).map(|()| t)) {
        Ok(t) => Ok(t),
        Err(e) => {
            let _ = shared.blobs.remove(&id);
            tracing::warn!(target: "ferry::assets", tree = %id, "{}@{}: assets tree refused: {e}", entry.package, entry.version);
            Err(refused(format!(
                "{}@{} refused: its assets tree {id} is invalid: {e}; it was signed by {}",
                entry.package, entry.version, entry.publisher
            )))
        }
    }
}

/// `entry` with another blob: downloaded like content, chunk by chunk from providers,
/// each chunk checked against the digests the signed release (or its tree) lists.
fn blob_of(entry: &ReleaseEntry, content: ContentId, size: u64, chunks: &[u8]) -> ReleaseEntry {
    ReleaseEntry {
        content,
        size,
        chunks: chunks.to_vec(),
        summary: None,
        attachments: Default::default(),
        ..entry.clone()
    }
}

#[derive(Deserialize)]
pub(super) struct AssetsQuery {
    spec: String,
    /// The network to ask (the node's own or a mirrored one); default: its own, then
    /// its mirrors.
    network: Option<String>,
}

/// `POST /v1/assets {spec, network?}`: makes the node hold a release's assets tree and
/// every file in it, and lists them; the client then reads each from `/v1/blobs/{cid}`.
pub(super) async fn fetch(
    State(s): State<AppState>,
    Json(q): Json<AssetsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut first_miss = None;
    for net in super::mirrors::nets(&s, q.network.as_deref())? {
        match fetch_in(&net.state, &q.spec).await {
            Err(e) if e.0 == StatusCode::NOT_FOUND => {
                first_miss.get_or_insert(e);
            }
            answer => return answer,
        }
    }
    Err(first_miss.unwrap_or_else(|| not_found("no network answered")))
}

async fn fetch_in(s: &AppState, spec: &str) -> Result<Json<serde_json::Value>, ApiError> {
    let shared = s.shared.clone();
    let spec = spec.to_string();
    let (entry, _) = blocking(move || resolve_spec(&shared, &spec, None)).await?;
    let Some(r) = entry.attachments.assets.clone() else {
        return Err(not_found(format!(
            "{}@{} was published without assets",
            entry.package, entry.version
        )));
    };
    ensure_local(
        s,
        &blob_of(&entry, r.tree.content, r.tree.size, &r.tree.chunks),
    )
    .await?;
    let shared = s.shared.clone();
    let (e, rr) = (entry.clone(), r.clone());
    let tree = blocking(move || load_tree(&shared, &e, &rr)).await?;
    // Servable here from now on, as they arrive.
    s.node
        .name_assets(
            tree.entries
                .iter()
                .filter(|f| f.size > 0)
                .map(|f| f.content)
                .collect(),
        )
        .await;
    let wanted: Vec<ReleaseEntry> = tree
        .entries
        .iter()
        .filter(|f| f.size > 0)
        .map(|f| blob_of(&entry, f.content, f.size, &f.chunks))
        .collect();
    let outcomes: Vec<_> = futures::stream::iter(wanted.clone())
        .map(|f| {
            let s = s.clone();
            async move { ensure_local(&s, &f).await }
        })
        .buffer_unordered(PARALLEL_FILES)
        .collect()
        .await;
    let mut hits = 0u64;
    for o in outcomes {
        if o? == "hit" {
            hits += 1;
        }
    }
    Ok(Json(json!({
        "package": entry.package.to_string(),
        "version": entry.version.to_string(),
        "tree": { "cid": r.tree.content.to_string(), "size": r.tree.size },
        "files": tree.files(),
        "bytes": tree.bytes(),
        "cached_files": hits,
        "downloaded_files": wanted.len() as u64 - hits,
        "entries": tree.entries.iter().map(|f| json!({
            "path": f.path,
            "size": f.size,
            "cid": f.content.to_string(),
            "executable": f.executable,
        })).collect::<Vec<_>>(),
    })))
}

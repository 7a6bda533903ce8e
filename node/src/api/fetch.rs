//! Fetch endpoints: make the node hold a blob, report progress, stream a stored blob.
//!
//! The node's blob store is its user's cache, shared by every project on the machine:
//! a fetch of content already stored makes no network transfer. Cached bytes are
//! checked again before they are used: a fetch hashes a stored blob against its id
//! first (a corrupt one is quarantined and downloaded again, and the answer says so),
//! and streaming a blob hashes every chunk against its digest before sending it.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_protocol::{ContentId, chunk};
use serde_json::json;

use super::read::{SpecQuery, required_key};
use super::view::{check_summary, content_deleted, resolve_spec};
use super::{ApiError, AppState, bad, blocking, gone, not_found};
use crate::blob_store::BlobError;
use crate::index::ReleaseEntry;

pub(super) async fn fetch(
    State(s): State<AppState>,
    Json(q): Json<SpecQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let shared = s.shared.clone();
    let key = required_key(&q)?;
    let (entry, mut view) = blocking(move || resolve_spec(&shared, &q.spec, key.as_ref())).await?;
    let cache = ensure_local(&s, &entry).await?;
    let shared = s.shared.clone();
    let checked = entry.clone();
    blocking(move || check_summary(&shared, &checked)).await?;
    view.release.summary = "verified";
    let mut v = serde_json::to_value(&view).unwrap_or_default();
    v["cache"] = json!(cache);
    v["download"] = json!(s.shared.transfer.download(&entry.content));
    Ok(Json(v))
}

/// Makes sure the blob of `entry` is stored and intact, and says how: `hit` (it was
/// stored and hashed again to its id: no network transfer), `downloaded`, or
/// `repaired` (it was stored but corrupt: quarantined and downloaded again).
pub(super) async fn ensure_local(
    s: &AppState,
    entry: &ReleaseEntry,
) -> Result<&'static str, ApiError> {
    let id = entry.content;
    let mut how = "downloaded";
    if s.shared.blobs.has(&id) {
        let blobs = s.shared.blobs.clone();
        let checked = tokio::task::spawn_blocking(move || blobs.verify(&id))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        match checked {
            Ok(()) => {
                s.shared.transfer.cache_hit();
                return Ok("hit");
            }
            Err(BlobError::Corrupt(_)) => {
                if s.shared.blobs.quarantine(&id).unwrap_or(false) {
                    s.shared.transfer.quarantined();
                }
                tracing::warn!(target: "ferry::cache", %id, "the cached blob of {}@{} no longer matches its content id: quarantined it, downloading it again", entry.package, entry.version);
                how = "repaired";
            }
            // Removed since (a deletion, a collection): download it.
            Err(BlobError::NotFound(_)) => {}
            Err(e) => return Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        }
    }
    s.shared.transfer.cache_miss();
    s.node.fetch(entry.clone()).await?;
    Ok(how)
}

pub(super) async fn progress(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ContentId = cid.parse().map_err(bad)?;
    if s.shared.blobs.has(&id) {
        let size = s.shared.blobs.size(&id).unwrap_or(0);
        return Ok(Json(
            json!({ "done": size, "total": size, "complete": true }),
        ));
    }
    let (done, total) = s
        .shared
        .progress(&id)
        .ok_or_else(|| not_found(format!("no download of {id} is running")))?;
    Ok(Json(
        json!({ "done": done, "total": total, "complete": false }),
    ))
}

pub(super) async fn blob(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Response, ApiError> {
    let id: ContentId = cid.parse().map_err(bad)?;
    let shared = s.shared.clone();
    if let Some(reason) = blocking(move || content_deleted(&shared, &id)).await? {
        return Err(gone(format!(
            "{id} was deleted by the network operator: {reason}"
        )));
    }
    // Marked before reading, so garbage collection keeps the blob until the body has
    // been sent (the guard lives in the stream).
    let guard = s.shared.serving(id);
    let len = s.shared.blobs.size(&id).ok_or_else(|| {
        not_found(format!(
            "blob {id} is not stored on this node: fetch it first"
        ))
    })?;
    // Chunk by chunk, each hashed against its digest before it is sent: a blob that
    // rotted since it was stored is cut off (and quarantined), never handed out.
    let count = chunk::count(len, chunk::CHUNK_SIZE);
    let shared = s.shared.clone();
    let stream = futures::stream::unfold(0u64, move |i| {
        let shared = shared.clone();
        let _held = &guard;
        async move {
            if i >= count {
                return None;
            }
            let blobs = shared.blobs.clone();
            let read = tokio::task::spawn_blocking(move || blobs.read_verified_chunk(&id, i))
                .await
                .unwrap_or(Err(BlobError::NotFound(id)));
            match read {
                Ok(bytes) => {
                    shared.transfer.local_served(bytes.len() as u64);
                    Some((Ok(Bytes::from(bytes)), i + 1))
                }
                Err(e) => {
                    if matches!(e, BlobError::Corrupt(_))
                        && shared.blobs.quarantine(&id).unwrap_or(false)
                    {
                        shared.transfer.quarantined();
                        tracing::warn!(target: "ferry::cache", %id, "stored blob no longer matches its content id: quarantined, stream cut off (fetch it again to repair)");
                    }
                    Some((Err(std::io::Error::other(e.to_string())), count))
                }
            }
        }
    });
    let body = Body::from_stream(stream);
    Ok((
        [
            (header::CONTENT_TYPE, "application/wasm".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct AttachmentQuery {
    spec: String,
    /// `readme`, `license-text` or `source-archive`.
    name: String,
}

/// Makes the node hold one attachment of a release; the client then reads it from
/// `/v1/blobs/{cid}`.
pub(super) async fn attachment(
    State(s): State<AppState>,
    Json(q): Json<AttachmentQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let shared = s.shared.clone();
    let spec = q.spec.clone();
    let (entry, _) = blocking(move || resolve_spec(&shared, &spec, None)).await?;
    let Some((name, a)) = entry
        .attachments
        .blobs()
        .find(|(n, _)| *n == q.name)
        .map(|(n, a)| (n, a.clone()))
    else {
        return Err(not_found(format!(
            "{}@{} was published without a {}",
            entry.package,
            entry.version,
            q.name.replace('-', " ")
        )));
    };
    // Downloaded like content: chunk by chunk from providers, each chunk verified
    // against the digests the signed release lists.
    let attached = crate::index::ReleaseEntry {
        content: a.content,
        size: a.size,
        chunks: a.chunks.to_vec(),
        summary: None,
        attachments: Default::default(),
        ..entry.clone()
    };
    ensure_local(&s, &attached).await?;
    Ok(Json(json!({
        "package": entry.package.to_string(),
        "version": entry.version.to_string(),
        "name": name,
        "cid": a.content.to_string(),
        "size": a.size,
    })))
}

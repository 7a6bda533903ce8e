//! Fetch endpoints: make the node hold a blob, report progress, stream a stored blob.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferry_protocol::ContentId;
use futures::StreamExt;
use serde_json::json;

use super::read::{SpecQuery, required_key};
use super::view::{VersionViewWithName, check_summary, content_deleted, resolve_spec};
use super::{ApiError, AppState, bad, blocking, gone, not_found};

pub(super) async fn fetch(
    State(s): State<AppState>,
    Json(q): Json<SpecQuery>,
) -> Result<Json<VersionViewWithName>, ApiError> {
    let shared = s.shared.clone();
    let key = required_key(&q)?;
    let (entry, mut view) = blocking(move || resolve_spec(&shared, &q.spec, key.as_ref())).await?;
    s.node.fetch(entry.clone()).await?;
    let shared = s.shared.clone();
    blocking(move || check_summary(&shared, &entry)).await?;
    view.release.summary = "verified";
    Ok(Json(view))
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
    // Marked before opening, so garbage collection keeps the blob until the body has
    // been sent (the guard lives in the stream).
    let guard = s.shared.serving(id);
    let path = s.shared.blobs.path(&id).ok_or_else(|| {
        not_found(format!(
            "blob {id} is not stored on this node: fetch it first"
        ))
    })?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| not_found(format!("{}: {e}", path.display())))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
        let _held = &guard;
        chunk
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
    s.node.fetch(attached).await?;
    Ok(Json(json!({
        "package": entry.package.to_string(),
        "version": entry.version.to_string(),
        "name": name,
        "cid": a.content.to_string(),
        "size": a.size,
    })))
}

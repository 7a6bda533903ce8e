//! Fetch endpoints: make the node hold a blob, report progress, stream a stored blob.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferry_protocol::ContentId;
use serde_json::json;

use super::read::{SpecQuery, required_key};
use super::view::{VersionViewWithName, content_deleted, resolve_spec};
use super::{ApiError, AppState, bad, blocking, gone, not_found};

pub(super) async fn fetch(
    State(s): State<AppState>,
    Json(q): Json<SpecQuery>,
) -> Result<Json<VersionViewWithName>, ApiError> {
    let shared = s.shared.clone();
    let key = required_key(&q)?;
    let (entry, view) = blocking(move || resolve_spec(&shared, &q.spec, key.as_ref())).await?;
    s.node.fetch(entry).await?;
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
    let path = s.shared.blobs.path(&id).ok_or_else(|| {
        not_found(format!(
            "blob {id} is not stored on this node: fetch it first"
        ))
    })?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| not_found(format!("{}: {e}", path.display())))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    Ok((
        [
            (header::CONTENT_TYPE, "application/wasm".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

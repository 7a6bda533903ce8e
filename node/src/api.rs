//! The local HTTP API on 127.0.0.1 that the CLI uses.
//!
//! Reads are open to local processes; writes need the bearer token stored in the data
//! directory with mode 0600, so only the node's owner can publish with its key.
//! Errors are JSON `{"error": "..."}` with a one-line message meant for a person.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ferry_protocol::component::MAX_PACKAGE_BYTES;
use serde_json::json;
use tokio::sync::watch;

use crate::command::{FetchError, NodeHandle, WriteError};
use crate::index::IndexError;
use crate::mirror::Mirrors;
use crate::node::Shared;

mod assets;
mod fetch;
mod mirrors;
mod pins;
mod read;
mod snapshot;
mod view;
mod write;

pub use view::{ReleaseView, VersionViewWithName};

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    node: NodeHandle,
    mirrors: Arc<Mirrors>,
}

/// An API error: a status and a one-line message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        let status = match e {
            WriteError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WriteError::Conflict(_) => StatusCode::CONFLICT,
            WriteError::NotSynced | WriteError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            WriteError::Unsupported(_) => StatusCode::BAD_REQUEST,
            WriteError::UnknownPackage(_) => StatusCode::NOT_FOUND,
            WriteError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl From<FetchError> for ApiError {
    fn from(e: FetchError) -> Self {
        let status = match e {
            FetchError::NoProvider(_) => StatusCode::BAD_GATEWAY,
            FetchError::Deleted(_) => StatusCode::GONE,
            FetchError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn bad(msg: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.to_string())
}

fn not_found(msg: impl ToString) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, msg.to_string())
}

fn gone(msg: impl ToString) -> ApiError {
    ApiError(StatusCode::GONE, msg.to_string())
}

/// Runs blocking index work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn check_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let want = state.shared.token.as_bytes();
    // Compare in constant time: the token is the only thing between a local process
    // and the publisher key.
    let same = given.len() == want.len()
        && given
            .bytes()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token (the CLI reads it from <data-dir>/api.token)".into(),
        ))
    }
}

/// Serves the API on `listener` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    node: NodeHandle,
    mirrors: Arc<Mirrors>,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared, node, mirrors);
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = res {
        tracing::error!(target: "ferry::api", "API server stopped: {e}");
    }
}

fn router(shared: Arc<Shared>, node: NodeHandle, mirrors: Arc<Mirrors>) -> Router {
    let body_limit = usize::try_from(MAX_PACKAGE_BYTES).unwrap_or(usize::MAX);
    Router::new()
        .route("/v1/status", get(read::status))
        .route("/metrics", get(read::metrics))
        .route("/v1/key", get(read::key))
        .route("/v1/packages/{name}", get(mirrors::info))
        .route("/v1/search", get(mirrors::search))
        .route("/v1/resolve", get(mirrors::resolve))
        .route("/v1/records/{id}", get(read::record))
        .route("/v1/heads", get(read::heads))
        .route("/v1/verify", post(read::verify))
        .route("/v1/content/{cid}", get(mirrors::content))
        .route("/v1/attachment", post(fetch::attachment))
        .route("/v1/assets", post(assets::fetch))
        .route("/v1/fetch", post(mirrors::fetch))
        .route("/v1/progress/{cid}", get(mirrors::progress))
        .route("/v1/blobs/{cid}", get(fetch::blob))
        .route("/v1/blobs", post(write::upload_blob))
        .route("/v1/publish", post(write::publish))
        .route("/v1/namespaces", post(write::define_namespace))
        .route("/v1/records", post(write::append))
        .route("/v1/records/signed", post(write::submit))
        .route(
            "/v1/pins",
            get(pins::list).post(pins::add).delete(pins::remove),
        )
        .route("/v1/gc", post(pins::gc))
        .route("/v1/cache", get(pins::cache).delete(pins::clear_cache))
        .route("/v1/mirrors", get(mirrors::list).post(mirrors::add))
        .route("/v1/mirrors/{network}", delete(mirrors::remove))
        .route("/v1/snapshot/export", post(snapshot::export))
        .route("/v1/snapshot/import", post(snapshot::import))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(AppState {
            shared,
            node,
            mirrors,
        })
}

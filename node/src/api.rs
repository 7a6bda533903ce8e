//! The local HTTP API on 127.0.0.1 that the CLI uses.
//!
//! Reads are open to local processes; writes need the bearer token stored in the data
//! directory with mode 0600, so only the node's owner can publish with its key.
//! Errors are JSON `{"error": "..."}` with a one-line message meant for a person.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferry_protocol::component::{self, MAX_PACKAGE_BYTES};
use ferry_protocol::{ContentId, Namespace, PackageName, PublicKey, Spec, chunk};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::command::{Draft, FetchError, NodeHandle, WriteError};
use crate::index::{IndexError, ReleaseEntry};
use crate::node::Shared;

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    node: NodeHandle,
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
            WriteError::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl From<FetchError> for ApiError {
    fn from(e: FetchError) -> Self {
        let status = match e {
            FetchError::NoProvider(_) => StatusCode::BAD_GATEWAY,
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
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared, node);
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = res {
        tracing::error!(target: "ferry::api", "API server stopped: {e}");
    }
}

fn router(shared: Arc<Shared>, node: NodeHandle) -> Router {
    let body_limit = usize::try_from(MAX_PACKAGE_BYTES).unwrap_or(usize::MAX);
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/key", get(key))
        .route("/v1/packages/{name}", get(info))
        .route("/v1/search", get(search))
        .route("/v1/resolve", get(resolve))
        .route("/v1/fetch", post(fetch))
        .route("/v1/progress/{cid}", get(progress))
        .route("/v1/blobs/{cid}", get(blob))
        .route("/v1/publish", post(publish))
        .route("/v1/namespaces", post(define_namespace))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(AppState { shared, node })
}

async fn status(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let peers = s.node.peers().await;
    let idx = s.shared.index.clone();
    let (packages, operator) = tokio::task::spawn_blocking(move || {
        Ok::<_, IndexError>((idx.packages()?.len(), idx.operator_state()?))
    })
    .await
    .map_err(|e| bad(e.to_string()))??;
    Ok(Json(json!({
        "network": s.shared.index.network().to_string(),
        "peer_id": s.shared.peer_id,
        "publisher": s.shared.publisher.to_string(),
        "peers": peers.len(),
        "packages": packages,
        "namespaces": operator.map(|o| o.namespaces.keys().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
        "releases_applied": s.shared.releases_applied(),
    })))
}

async fn key(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "publisher": s.shared.publisher.to_string() }))
}

/// One version in `info` output.
#[derive(Debug, Serialize)]
pub struct VersionView {
    /// Version.
    pub version: String,
    /// Blob CID.
    pub cid: String,
    /// Blob digest, OCI style.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Signing key.
    pub publisher: String,
    /// Description.
    pub description: Option<String>,
    /// License.
    pub license: Option<String>,
    /// Component or WIT package.
    pub kind: component::PackageKind,
    /// Release record id.
    pub record: String,
    /// Publication time claimed by the publisher.
    pub time_ms: u64,
}

impl From<&ReleaseEntry> for VersionView {
    fn from(e: &ReleaseEntry) -> Self {
        Self {
            version: e.version.to_string(),
            cid: e.content.to_string(),
            sha256: e.content.to_sha256(),
            size: e.size,
            publisher: e.publisher.to_string(),
            description: e.description.clone(),
            license: e.license.clone(),
            kind: e.kind,
            record: e.record.to_string(),
            time_ms: e.time_ms,
        }
    }
}

async fn info(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pkg: PackageName = name.parse().map_err(bad)?;
    let idx = s.shared.index.clone();
    let p = pkg.clone();
    let (state, releases) = tokio::task::spawn_blocking(move || {
        Ok::<_, IndexError>((idx.package_state(&p)?, idx.releases(&p)?))
    })
    .await
    .map_err(|e| bad(e.to_string()))??;
    let state =
        state.ok_or_else(|| not_found(format!("package {pkg} is not known to this node")))?;
    Ok(Json(json!({
        "package": pkg.to_string(),
        "kind": state.kind,
        "head": { "seq": state.head.seq, "id": state.head.id.to_string() },
        "versions": releases.iter().map(VersionView::from).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

async fn search(
    State(s): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let idx = s.shared.index.clone();
    let limit = q.limit.unwrap_or(50).min(1000);
    let hits = tokio::task::spawn_blocking(move || idx.search(&q.q, limit))
        .await
        .map_err(|e| bad(e.to_string()))??;
    Ok(Json(serde_json::to_value(hits).unwrap_or_default()))
}

#[derive(Deserialize)]
struct SpecQuery {
    spec: String,
}

fn resolve_spec(shared: &Shared, spec: &str) -> Result<ReleaseEntry, ApiError> {
    let spec: Spec = spec.parse().map_err(bad)?;
    match spec {
        Spec::Package(name, want) => {
            let releases = shared.index.releases(&name)?;
            if releases.is_empty() {
                return Err(not_found(format!(
                    "package {name} is not known to this node"
                )));
            }
            let versions: Vec<_> = releases.iter().map(|r| &r.version).collect();
            let v = want
                .resolve(versions.iter().copied())
                .cloned()
                .ok_or_else(|| {
                    not_found(format!(
                        "no version of {name} matches {want} (known: {})",
                        versions
                            .iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            releases
                .into_iter()
                .find(|r| r.version == v)
                .ok_or_else(|| not_found(format!("{name}@{v} vanished")))
        }
        Spec::Content(cid) => shared
            .index
            .releases_by_content(&cid)?
            .into_iter()
            .next()
            .ok_or_else(|| not_found(format!("no release in this network has content {cid}"))),
    }
}

async fn resolve(
    State(s): State<AppState>,
    Query(q): Query<SpecQuery>,
) -> Result<Json<VersionViewWithName>, ApiError> {
    let shared = s.shared.clone();
    let e = tokio::task::spawn_blocking(move || resolve_spec(&shared, &q.spec))
        .await
        .map_err(|e| bad(e.to_string()))??;
    Ok(Json(VersionViewWithName::from(&e)))
}

/// A release with its package name, as `resolve` and `fetch` return it.
#[derive(Debug, Serialize)]
pub struct VersionViewWithName {
    /// Package.
    pub package: String,
    /// The release.
    #[serde(flatten)]
    pub release: VersionView,
}

impl From<&ReleaseEntry> for VersionViewWithName {
    fn from(e: &ReleaseEntry) -> Self {
        Self {
            package: e.package.to_string(),
            release: VersionView::from(e),
        }
    }
}

async fn fetch(
    State(s): State<AppState>,
    Json(q): Json<SpecQuery>,
) -> Result<Json<VersionViewWithName>, ApiError> {
    let shared = s.shared.clone();
    let entry = tokio::task::spawn_blocking(move || resolve_spec(&shared, &q.spec))
        .await
        .map_err(|e| bad(e.to_string()))??;
    s.node.fetch(entry.clone()).await?;
    Ok(Json(VersionViewWithName::from(&entry)))
}

async fn progress(
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

async fn blob(State(s): State<AppState>, Path(cid): Path<String>) -> Result<Response, ApiError> {
    let id: ContentId = cid.parse().map_err(bad)?;
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

#[derive(Deserialize)]
struct PublishQuery {
    package: String,
    version: String,
    description: Option<String>,
    license: Option<String>,
}

async fn publish(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PublishQuery>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&s, &headers)?;
    let package: PackageName = q.package.parse().map_err(bad)?;
    let version = semver::Version::parse(&q.version).map_err(|_| {
        bad(format!(
            "`{}` is not a semver version (expected e.g. 1.2.3)",
            q.version
        ))
    })?;
    let blobs = s.shared.blobs.clone();
    // Check, hash and store off the async threads: validation of a large component
    // takes milliseconds to seconds.
    let (checked, content, chunks, existed) = tokio::task::spawn_blocking(move || {
        let checked = component::check(&bytes)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let content = ContentId::of(&bytes);
        let existed = blobs.has(&content);
        let chunks = chunk::digests(&bytes, chunk::CHUNK_SIZE);
        blobs
            .put(&bytes)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok::<_, ApiError>((checked, content, chunks, existed))
    })
    .await
    .map_err(|e| bad(e.to_string()))??;
    let size = s.shared.blobs.size(&content).unwrap_or(0);
    let draft = Draft {
        package: package.clone(),
        version: version.clone(),
        kind: checked.kind,
        content,
        size,
        chunks,
        description: q.description.filter(|d| !d.is_empty()),
        license: q.license.filter(|l| !l.is_empty()),
    };
    match s.node.publish(draft).await {
        Ok(entry) => Ok(Json(json!({
            "cid": entry.content.to_string(),
            "sha256": entry.content.to_sha256(),
            "package": entry.package.to_string(),
            "version": entry.version.to_string(),
            "size": entry.size,
            "kind": entry.kind,
            "record": entry.record.to_string(),
            "wit_package": checked.wit_package,
        }))),
        Err(e) => {
            // Leave no trace of a refused publish: drop the blob unless it was already
            // stored for another release.
            if !existed {
                let _ = s.shared.blobs.remove(&content);
            }
            Err(ApiError::from(e))
        }
    }
}

#[derive(Deserialize)]
struct NamespaceBody {
    namespace: String,
    owners: Vec<String>,
}

async fn define_namespace(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<NamespaceBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&s, &headers)?;
    let ns: Namespace = b.namespace.parse().map_err(bad)?;
    let owners = if b.owners.is_empty() {
        vec![s.shared.publisher]
    } else {
        b.owners
            .iter()
            .map(|o| o.parse::<PublicKey>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?
    };
    s.node.define_namespace(ns.clone(), owners.clone()).await?;
    Ok(Json(json!({
        "namespace": ns.to_string(),
        "owners": owners.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
    })))
}

//! Write endpoints: publish, define a namespace, append a signed statement. All need
//! the API token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use ferry_protocol::record::Body;
use ferry_protocol::{ContentId, Namespace, PackageName, PublicKey, chunk, component};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, bad, blocking, check_token};
use crate::command::Draft;

#[derive(Deserialize)]
pub(super) struct PublishQuery {
    package: String,
    version: String,
    description: Option<String>,
    license: Option<String>,
}

pub(super) async fn publish(
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
    // Check, hash and store off the async threads: validating a large component takes
    // milliseconds to seconds.
    let (checked, content, chunks, existed, metadata_license) = blocking(move || {
        let checked = component::check(&bytes)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let content = ContentId::of(&bytes);
        let existed = blobs.has(&content);
        let chunks = chunk::digests(&bytes, chunk::CHUNK_SIZE);
        let license = component::metadata_license(&bytes);
        blobs
            .put(&bytes)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok((checked, content, chunks, existed, license))
    })
    .await?;
    let size = s.shared.blobs.size(&content).unwrap_or(0);
    let draft = Draft {
        package: package.clone(),
        version: version.clone(),
        kind: checked.kind,
        content,
        size,
        chunks,
        description: q.description.filter(|d| !d.is_empty()),
        // --license wins; otherwise the component's own `licenses` metadata.
        license: q.license.filter(|l| !l.is_empty()).or(metadata_license),
    };
    match s.node.publish(draft).await {
        Ok(entry) => Ok(Json(json!({
            "cid": entry.content.to_string(),
            "sha256": entry.content.to_sha256(),
            "package": entry.package.to_string(),
            "version": entry.version.to_string(),
            "size": entry.size,
            "kind": entry.kind,
            "license": entry.license,
            "record": entry.record.to_string(),
            "wit_package": checked.wit_package,
        }))),
        Err(e) => {
            // Leave no trace of a refused publish: drop the blob unless it was already
            // stored for another release.
            if !existed {
                let _ = s.shared.blobs.remove(&content);
            }
            Err(e.into())
        }
    }
}

#[derive(Deserialize)]
pub(super) struct NamespaceBody {
    namespace: String,
    owners: Vec<String>,
}

pub(super) async fn define_namespace(
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

#[derive(Deserialize)]
pub(super) struct AppendBody {
    /// `operator`, a package name, or anything for attestations.
    #[serde(default)]
    log: String,
    body: Body,
}

/// Signs a statement (grant, revoke, yank, unyank, delete, policy, attest,
/// resolve-fork, ...) with the node's publisher key and appends it.
pub(super) async fn append(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<AppendBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&s, &headers)?;
    let kind = b.body.kind();
    let id = s.node.append(b.log.clone(), b.body).await?;
    Ok(Json(
        json!({ "record": id.to_string(), "kind": kind, "log": b.log }),
    ))
}

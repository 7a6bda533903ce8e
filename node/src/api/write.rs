//! Write endpoints: publish, define a namespace, append a signed statement. All need
//! the API token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use ferry_protocol::record::{Attachment, Attachments, Body, SourceRef};
use ferry_protocol::{ContentId, Namespace, PackageName, PublicKey, chunk, component};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use serde_json::json;
use sha2::Digest;

use super::{ApiError, AppState, bad, blocking, check_token};
use crate::command::Draft;

#[derive(Deserialize)]
pub(super) struct PublishQuery {
    package: String,
    version: String,
    description: Option<String>,
    license: Option<String>,
    /// CID of a blob uploaded with `POST /v1/blobs`: the README.
    readme: Option<String>,
    /// CID of an uploaded blob: the license text.
    license_file: Option<String>,
    /// CID of an uploaded blob: an archive of the source.
    source_archive: Option<String>,
    /// Repository URL (default: the component's `source` metadata).
    source_repo: Option<String>,
    /// Revision (default: the component's `revision` metadata).
    source_rev: Option<String>,
    /// CID of an uploaded assets tree ([`ferry_protocol::assets::AssetTree`]) whose
    /// files are all uploaded too.
    assets: Option<String>,
}

/// An uploaded attachment: it must already be stored on this node.
fn attachment(s: &AppState, what: &str, cid: Option<&str>) -> Result<Option<Attachment>, ApiError> {
    let Some(cid) = cid.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let id: ContentId = cid.parse().map_err(bad)?;
    let missing = || {
        bad(format!(
            "the {what} {id} is not stored on this node: upload it with POST /v1/blobs first"
        ))
    };
    let size = s.shared.blobs.size(&id).ok_or_else(missing)?;
    // Chunk by chunk, so a large source archive is never held in memory whole.
    let mut chunks = Vec::new();
    for i in 0..chunk::count(size, chunk::CHUNK_SIZE) {
        let c = s.shared.blobs.read_chunk(&id, i).map_err(|_| missing())?;
        chunks.extend_from_slice(&sha2::Sha256::digest(&c));
    }
    Ok(Some(Attachment {
        content: id,
        size,
        chunks: ByteBuf::from(chunks),
    }))
}

/// Stores an attachment blob (README, license text, source archive) for a later publish.
pub(super) async fn upload_blob(
    State(s): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&s, &headers)?;
    if bytes.is_empty() {
        return Err(bad("an empty file cannot be attached"));
    }
    let shared = s.shared.clone();
    let id = blocking(move || {
        let id = ContentId::of(&bytes);
        // The user put it here: a cache hold, recorded before the blob exists so that
        // a collection in between cannot take it before it is published.
        shared.index.touch_cache(&id, crate::node::now_ms())?;
        shared
            .blobs
            .put(&bytes)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(id)
    })
    .await?;
    let size = s.shared.blobs.size(&id).unwrap_or(0);
    Ok(Json(json!({ "cid": id.to_string(), "size": size })))
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
    let shared = s.shared.clone();
    // Check, hash and store off the async threads: validating a large component takes
    // milliseconds to seconds.
    let (checked, content, chunks, existed, metadata_license, _in_flight) = blocking(move || {
        let checked = component::check(&bytes)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let content = ContentId::of(&bytes);
        // In flight until the release is signed and marked published: no collection
        // may take the blob in between.
        let guard = shared.serving(content);
        let blobs = &shared.blobs;
        let existed = blobs.has(&content);
        let chunks = chunk::digests(&bytes, chunk::CHUNK_SIZE);
        let license = component::metadata_license(&bytes);
        blobs
            .put(&bytes)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok((checked, content, chunks, existed, license, guard))
    })
    .await?;
    let size = s.shared.blobs.size(&content).unwrap_or(0);
    let (assets, asset_files) = match q.assets.filter(|a| !a.is_empty()) {
        Some(cid) => {
            let shared = s.shared.clone();
            let (r, files) = blocking(move || super::assets::publish_ref(&shared, &cid)).await?;
            (Some(r), files)
        }
        None => (None, Vec::new()),
    };
    let meta = &checked.summary.metadata;
    let attachments = Attachments {
        readme: attachment(&s, "README", q.readme.as_deref())?,
        license_text: attachment(&s, "license text", q.license_file.as_deref())?,
        source_archive: attachment(&s, "source archive", q.source_archive.as_deref())?,
        source: {
            let src = SourceRef {
                repository: q
                    .source_repo
                    .filter(|r| !r.is_empty())
                    .or_else(|| meta.source.clone()),
                revision: q
                    .source_rev
                    .filter(|r| !r.is_empty())
                    .or_else(|| meta.revision.clone()),
            };
            (src != SourceRef::default()).then_some(src)
        },
        assets,
    };
    let description = q
        .description
        .filter(|d| !d.is_empty())
        .or_else(|| meta.description.clone());
    let draft = Draft {
        package: package.clone(),
        version: version.clone(),
        kind: checked.kind,
        content,
        size,
        chunks,
        description,
        // --license wins; otherwise the component's own `licenses` metadata.
        license: q.license.filter(|l| !l.is_empty()).or(metadata_license),
        summary: checked.summary.clone(),
        attachments,
        extra_blobs: asset_files,
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

/// Takes a record signed elsewhere (e.g. by an offline key), validates it as a peer's
/// record would be, stores and announces it. A release whose content is already here
/// must carry the summary its bytes give.
pub(super) async fn submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&s, &headers)?;
    let rec = ferry_protocol::SignedRecord::decode(&bytes)
        .map_err(|e| bad(format!("not a signed record: {e}")))?;
    if let Body::Release(rel) = &rec.record.body {
        let shared = s.shared.clone();
        let (log, rel) = (rec.record.log.clone(), rel.clone());
        blocking(move || super::assets::check_submitted(&shared, &log, &rel)).await?;
    }
    if let Body::Release(rel) = &rec.record.body
        && s.shared.blobs.has(&rel.content)
    {
        let shared = s.shared.clone();
        let rel = rel.clone();
        let log = rec.record.log.clone();
        blocking(move || {
            let path = shared
                .blobs
                .path(&rel.content)
                .ok_or_else(|| bad("blob vanished"))?;
            let data = std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let computed = component::check(&data).map_err(|e| {
                ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "{log}@{} refused: its content is not a valid package: {e}",
                        rel.version
                    ),
                )
            })?;
            let announced = rel.summary.clone().unwrap_or_default();
            if let Some(d) = component::analysis::difference(&announced, &computed.summary) {
                return Err(ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "{log}@{} refused: its signed summary does not match its content ({d})",
                        rel.version
                    ),
                ));
            }
            Ok(())
        })
        .await?;
    }
    let id = rec.id;
    let kind = rec.record.body.kind();
    let log = rec.record.log.clone();
    let new = s.node.submit(rec).await?;
    Ok(Json(
        json!({ "record": id.to_string(), "kind": kind, "log": log, "new": new }),
    ))
}

//! Read endpoints: status, package info, search, resolution, records, heads, verify.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use ferry_protocol::{ContentId, PackageName, PublicKey, RecordId, SignedRecord};
use serde::Deserialize;
use serde_json::json;

use super::view::{VersionViewWithName, release_view, resolve_spec};
use super::{ApiError, AppState, bad, blocking, not_found};
use crate::index::{InterfaceQuery, SearchQuery as IndexQuery};

pub(super) async fn status(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let peers = s.node.peers().await;
    let idx = s.shared.index.clone();
    let (packages, operator) =
        blocking(move || Ok((idx.packages()?.len(), idx.operator_state()?))).await?;
    Ok(Json(json!({
        "network": s.shared.index.network().to_string(),
        "peer_id": s.shared.peer_id,
        "publisher": s.shared.publisher.to_string(),
        "peers": peers.len(),
        "peer_list": peers,
        "packages": packages,
        "namespaces": operator.as_ref().map(|o| o.namespaces.keys().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
        "operators": operator.as_ref().map(|o| o.operators.keys().map(|k| k.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
        "policy": operator.as_ref().map(|o| json!({ "require_spdx": o.policy.require_spdx })),
        "operator_log_forked": operator.as_ref().and_then(|o| o.forked.as_ref()).map(|f| f.seq),
        "releases_applied": s.shared.releases_applied(),
        "transfer": s.shared.transfer.view(),
    })))
}

/// `GET /metrics`: transfer and cache counters in Prometheus text format.
pub(super) async fn metrics(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.shared.transfer.prometheus(),
    )
}

pub(super) async fn key(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "publisher": s.shared.publisher.to_string() }))
}

#[derive(Deserialize)]
pub(super) struct InfoQuery {
    /// Only versions matching this (an exact version or a requirement).
    version: Option<String>,
}

pub(super) async fn info(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(iq): Query<InfoQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pkg: PackageName = name.parse().map_err(bad)?;
    let want = iq
        .version
        .filter(|v| !v.is_empty())
        .map(|v| ferry_protocol::Want::parse(&v).map_err(bad))
        .transpose()?;
    let shared = s.shared.clone();
    blocking(move || {
        let idx = &shared.index;
        let state = idx
            .package_state(&pkg)?
            .ok_or_else(|| not_found(format!("package {pkg} is not known to this node")))?;
        let op = idx.operator_state()?;
        let versions = idx
            .releases(&pkg)?
            .iter()
            .filter(|r| want.as_ref().is_none_or(|w| w.matches(&r.version)))
            .map(|r| release_view(&shared, r, op.as_ref(), Some(&state)))
            .collect::<Result<Vec<_>, _>>()?;
        if versions.is_empty()
            && let Some(w) = &want
        {
            return Err(not_found(format!("no version of {pkg} matches {w}")));
        }
        let deleted = op
            .as_ref()
            .and_then(|o| o.deletion(&pkg.to_string(), None, None))
            .map(|t| json!({ "reason": t.reason, "record": t.record.to_string() }));
        Ok(Json(json!({
            "package": pkg.to_string(),
            "kind": state.kind,
            "head": { "seq": state.head.seq, "id": state.head.id.to_string() },
            "forked": state.forked.as_ref().map(|f| json!({
                "seq": f.seq,
                "candidates": f.candidates.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            })),
            "deleted": deleted,
            "grants": state.grants.iter().map(|(k, g)| json!({
                "key": k.to_string(),
                "perms": g.perms.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "record": g.record.to_string(),
            })).collect::<Vec<_>>(),
            "versions": versions,
        })))
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    /// Free text (names, descriptions).
    q: Option<String>,
    /// `ns:pkg/iface[@req]` the component must export.
    implements: Option<String>,
    /// `ns:pkg/iface[@req]` the component must import.
    imports: Option<String>,
    /// Version requirement on the release.
    version: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn search(
    State(s): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let idx = s.shared.index.clone();
    let iface = |v: Option<String>| -> Result<Option<InterfaceQuery>, ApiError> {
        v.filter(|v| !v.is_empty())
            .map(|v| v.parse().map_err(bad))
            .transpose()
    };
    let query = IndexQuery {
        text: q.q,
        implements: iface(q.implements)?,
        imports: iface(q.imports)?,
        version: q
            .version
            .filter(|v| !v.is_empty())
            .map(|v| {
                semver::VersionReq::parse(&v).map_err(|_| {
                    bad(format!(
                        "`{v}` is not a version requirement (expected e.g. ^1.2 or >=0.2, <0.3)"
                    ))
                })
            })
            .transpose()?,
        limit: q.limit.unwrap_or(50).min(1000),
    };
    if query.text.as_deref().is_none_or(|t| t.trim().is_empty())
        && query.implements.is_none()
        && query.imports.is_none()
    {
        return Err(bad(
            "give search words, --implements or --imports (e.g. --implements wasi:http/incoming-handler@0.2)",
        ));
    }
    // Deleted, yanked and lying releases are left out by the index.
    let hits = blocking(move || Ok(idx.find(&query)?)).await?;
    Ok(Json(serde_json::to_value(hits).unwrap_or_default()))
}

#[derive(Deserialize)]
pub(super) struct SpecQuery {
    pub(super) spec: String,
    pub(super) require_attestation: Option<String>,
}

pub(super) fn required_key(q: &SpecQuery) -> Result<Option<PublicKey>, ApiError> {
    q.require_attestation
        .as_deref()
        .map(|k| k.parse().map_err(bad))
        .transpose()
}

pub(super) async fn resolve(
    State(s): State<AppState>,
    Query(q): Query<SpecQuery>,
) -> Result<Json<VersionViewWithName>, ApiError> {
    let shared = s.shared.clone();
    let key = required_key(&q)?;
    let (_, view) = blocking(move || resolve_spec(&shared, &q.spec, key.as_ref())).await?;
    Ok(Json(view))
}

pub(super) async fn record(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: RecordId = id.parse().map_err(bad)?;
    let idx = s.shared.index.clone();
    blocking(move || {
        let (bytes, evidence) = match idx.record(&id)? {
            Some(b) => (b, false),
            None => (
                idx.evidence(&id)?
                    .ok_or_else(|| not_found(format!("record {id} is not known to this node")))?,
                true,
            ),
        };
        let rec =
            SignedRecord::decode(&bytes).map_err(|e| bad(format!("stored record {id}: {e}")))?;
        Ok(Json(json!({
            "id": id.to_string(),
            "log": rec.record.log,
            "seq": rec.record.seq,
            "prev": rec.record.prev.map(|p| p.to_string()),
            "time_ms": rec.record.time_ms,
            "signer": rec.signer.to_string(),
            "kind": rec.record.body.kind(),
            "body": serde_json::to_value(&rec.record.body).unwrap_or_default(),
            "evidence": evidence,
        })))
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct HeadsQuery {
    after: Option<String>,
}

pub(super) async fn heads(
    State(s): State<AppState>,
    Query(q): Query<HeadsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let idx = s.shared.index.clone();
    blocking(move || {
        let (heads, more) = idx.heads(q.after.as_deref(), 10_000)?;
        Ok(Json(json!({ "heads": heads.iter().map(|h| json!({
            "log": h.log,
            "seq": h.seq,
            "id": h.id.to_string(),
            "fork": h.fork.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(), "more": more })))
    })
    .await
}

/// Releases whose content is `cid` (a CID or `sha256:<hex>`).
pub(super) async fn content(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cid: ContentId = cid.parse().map_err(bad)?;
    let shared = s.shared.clone();
    blocking(move || {
        let releases = shared.index.releases_by_content(&cid)?;
        if releases.is_empty() {
            return Err(not_found(format!(
                "no release in this network has content {cid} ({})",
                cid.to_sha256()
            )));
        }
        let op = shared.index.operator_state()?;
        let mut out = Vec::new();
        for r in &releases {
            let pkg = shared.index.package_state(&r.package)?;
            out.push(VersionViewWithName {
                package: r.package.to_string(),
                release: release_view(&shared, r, op.as_ref(), pkg.as_ref())?,
            });
        }
        Ok(Json(
            json!({ "cid": cid.to_string(), "sha256": cid.to_sha256(), "releases": out }),
        ))
    })
    .await
}

pub(super) async fn verify(
    State(s): State<AppState>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let shared = s.shared.clone();
    blocking(move || {
        let cid = ContentId::of(&bytes);
        let releases = shared.index.releases_by_content(&cid)?;
        if releases.is_empty() {
            return Err(not_found(format!(
                "no signed release in this network has these bytes ({cid}, {})",
                cid.to_sha256()
            )));
        }
        let op = shared.index.operator_state()?;
        let mut out = Vec::new();
        for r in &releases {
            let pkg = shared.index.package_state(&r.package)?;
            out.push(VersionViewWithName {
                package: r.package.to_string(),
                release: release_view(&shared, r, op.as_ref(), pkg.as_ref())?,
            });
        }
        Ok(Json(json!({ "cid": cid.to_string(), "sha256": cid.to_sha256(), "size": bytes.len(), "releases": out })))
    })
    .await
}

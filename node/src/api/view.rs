//! How releases look to API clients, and how a user's spec resolves to one.
//!
//! Resolution of a version requirement skips yanked and deleted versions; an exact
//! version or a content id still resolves to a yanked release (the view says so and the
//! CLI warns) but never to deleted content.

use ferry_protocol::component::PackageKind;
use ferry_protocol::log::{OperatorState, PackageState};
use ferry_protocol::{ContentId, PublicKey, Spec, Want};
use serde::Serialize;

use super::{ApiError, bad, gone, not_found};
use crate::index::ReleaseEntry;
use crate::node::Shared;

/// A yank or deletion notice.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// Why.
    pub reason: Option<String>,
    /// The record that made it.
    pub record: String,
}

/// An attestation as shown with a release.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationView {
    /// The attesting key.
    pub key: String,
    /// The claim.
    pub claim: String,
    /// Attached JSON, if any.
    pub data: Option<serde_json::Value>,
    /// The attestation record.
    pub record: String,
}

/// One release, with everything a user should see before installing it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseView {
    /// Version.
    pub version: String,
    /// Blob CID.
    pub cid: String,
    /// Blob digest, OCI style.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The key that signed the release.
    pub publisher: String,
    /// The record that gave that key its right to release.
    pub authority: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// License.
    pub license: Option<String>,
    /// Component or WIT package.
    pub kind: PackageKind,
    /// Release record id.
    pub record: String,
    /// Publication time claimed by the publisher.
    pub time_ms: u64,
    /// Set when yanked.
    pub yanked: Option<Notice>,
    /// Set when the operator deleted it.
    pub deleted: Option<Notice>,
    /// Statements by other keys about this release.
    pub attestations: Vec<AttestationView>,
}

/// A release with its package name, as `resolve`, `fetch` and `verify` return it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionViewWithName {
    /// Package.
    pub package: String,
    /// The release.
    #[serde(flatten)]
    pub release: ReleaseView,
}

/// Builds the view of `e` given the operator and package states.
pub fn release_view(
    shared: &Shared,
    e: &ReleaseEntry,
    op: Option<&OperatorState>,
    pkg: Option<&PackageState>,
) -> Result<ReleaseView, ApiError> {
    let vs = pkg.and_then(|p| p.versions.get(&e.version));
    let deleted = op
        .and_then(|o| {
            o.deletion(
                &e.package.to_string(),
                Some(&e.version.to_string()),
                Some(&e.content),
            )
        })
        .map(|t| Notice {
            reason: Some(t.reason.clone()),
            record: t.record.to_string(),
        });
    let attestations = shared
        .index
        .attestations(&e.record)?
        .into_iter()
        .map(|(id, key, a)| AttestationView {
            key: key.to_string(),
            claim: a.claim,
            data: a.data.and_then(|d| serde_json::from_str(&d).ok()),
            record: id.to_string(),
        })
        .collect();
    Ok(ReleaseView {
        version: e.version.to_string(),
        cid: e.content.to_string(),
        sha256: e.content.to_sha256(),
        size: e.size,
        publisher: e.publisher.to_string(),
        authority: vs.map(|v| v.authority.to_string()),
        description: e.description.clone(),
        license: e.license.clone(),
        kind: e.kind,
        record: e.record.to_string(),
        time_ms: e.time_ms,
        yanked: vs.and_then(|v| v.yanked.as_ref()).map(|y| Notice {
            reason: y.reason.clone(),
            record: y.record.to_string(),
        }),
        deleted,
        attestations,
    })
}

/// Resolves a user's spec to one release and its view. `require` names a key whose
/// attestation the release must carry.
pub fn resolve_spec(
    shared: &Shared,
    spec: &str,
    require: Option<&PublicKey>,
) -> Result<(ReleaseEntry, VersionViewWithName), ApiError> {
    let spec: Spec = spec.parse().map_err(bad)?;
    let op = shared.index.operator_state()?;
    let (entry, view) = match spec {
        Spec::Package(name, want) => {
            let pkg = shared.index.package_state(&name)?;
            let releases = shared.index.releases(&name)?;
            if releases.is_empty() {
                return Err(not_found(format!(
                    "package {name} is not known to this node"
                )));
            }
            let views = releases
                .iter()
                .map(|r| release_view(shared, r, op.as_ref(), pkg.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            let pick = match &want {
                Want::Exact(v) => releases.iter().position(|r| &r.version == v),
                _ => releases
                    .iter()
                    .zip(&views)
                    .enumerate()
                    .filter(|(_, (r, v))| {
                        v.yanked.is_none() && v.deleted.is_none() && want.matches(&r.version)
                    })
                    .max_by(|a, b| a.1.0.version.cmp(&b.1.0.version))
                    .map(|(i, _)| i),
            };
            let Some(i) = pick else {
                let known: Vec<String> = releases
                    .iter()
                    .zip(&views)
                    .map(|(r, v)| {
                        let mark = if v.deleted.is_some() {
                            " (deleted)"
                        } else if v.yanked.is_some() {
                            " (yanked)"
                        } else {
                            ""
                        };
                        format!("{}{mark}", r.version)
                    })
                    .collect();
                return Err(not_found(format!(
                    "no version of {name} matches {want} (known: {})",
                    known.join(", ")
                )));
            };
            (releases[i].clone(), views[i].clone())
        }
        Spec::Content(cid) => {
            let releases = shared.index.releases_by_content(&cid)?;
            if releases.is_empty() {
                return Err(not_found(format!(
                    "no release in this network has content {cid} ({})",
                    cid.to_sha256()
                )));
            }
            let mut first = None;
            for r in releases {
                let pkg = shared.index.package_state(&r.package)?;
                let v = release_view(shared, &r, op.as_ref(), pkg.as_ref())?;
                if v.deleted.is_none() {
                    first = Some((r, v));
                    break;
                }
                first.get_or_insert((r, v));
            }
            first.ok_or_else(|| not_found(format!("no release has content {cid}")))?
        }
    };
    if let Some(d) = &view.deleted {
        return Err(gone(format!(
            "{}@{} ({}) was deleted by the network operator: {}",
            entry.package,
            entry.version,
            entry.content,
            d.reason.as_deref().unwrap_or("no reason given")
        )));
    }
    if let Some(key) = require
        && !view.attestations.iter().any(|a| a.key == key.to_string())
    {
        return Err(ApiError(
            axum::http::StatusCode::PRECONDITION_FAILED,
            format!(
                "{}@{} has no attestation from {key}",
                entry.package, entry.version
            ),
        ));
    }
    let view = VersionViewWithName {
        package: entry.package.to_string(),
        release: view,
    };
    Ok((entry, view))
}

/// Whether operator tombstones cover this content.
pub fn content_deleted(shared: &Shared, id: &ContentId) -> Result<Option<String>, ApiError> {
    let Some(op) = shared.index.operator_state()? else {
        return Ok(None);
    };
    if let Some(t) = op.deletion("", None, Some(id)) {
        return Ok(Some(t.reason.clone()));
    }
    for r in shared.index.releases_by_content(id)? {
        if let Some(t) = op.deletion(
            &r.package.to_string(),
            Some(&r.version.to_string()),
            Some(id),
        ) {
            return Ok(Some(t.reason.clone()));
        }
    }
    Ok(None)
}

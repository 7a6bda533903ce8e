//! How releases look to API clients, and how a user's spec resolves to one.
//!
//! Resolution of a version requirement skips yanked and deleted versions; an exact
//! version or a content id still resolves to a yanked release (the view says so and the
//! CLI warns) but never to deleted content.

use std::sync::Arc;

use ferry_protocol::component::PackageKind;
use ferry_protocol::component::analysis::{Capability, Metadata};
use ferry_protocol::log::{OperatorState, PackageState};
use ferry_protocol::record::Attachments;
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
    /// Imported interfaces and functions: the content's dependencies on its host.
    pub imports: Vec<String>,
    /// Exported interfaces and functions.
    pub exports: Vec<String>,
    /// What the imports ask of a host, grouped for people.
    pub capabilities: Vec<Capability>,
    /// For a WIT package: its own name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wit_package: Option<String>,
    /// For a WIT package: its interfaces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// For a WIT package: its worlds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub worlds: Vec<String>,
    /// Metadata sections (authors, source, homepage, revision, producers, ...).
    pub metadata: Metadata,
    /// Attached files and the source reference.
    pub attachments: AttachmentsView,
    /// `verified` once this node checked the summary against the bytes, `announced`
    /// before, `refused` when it lied.
    pub summary: &'static str,
    /// Why the summary was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_problem: Option<String>,
}

/// One attached blob.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedView {
    /// Its CID.
    pub cid: String,
    /// Its size.
    pub size: u64,
}

/// Attached files and source reference of a release.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AttachmentsView {
    /// README.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readme: Option<AttachedView>,
    /// License text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_text: Option<AttachedView>,
    /// Source archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_archive: Option<AttachedView>,
    /// Repository URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The assets tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assets: Option<AssetsView>,
}

/// The assets tree of a release, as announced.
#[derive(Debug, Clone, Serialize)]
pub struct AssetsView {
    /// The tree blob's CID.
    pub cid: String,
    /// The tree blob's size.
    pub size: u64,
    /// Number of files.
    pub files: u64,
    /// Total size of the files.
    pub bytes: u64,
}

fn attachments_view(a: &Attachments) -> AttachmentsView {
    let one = |x: &Option<ferry_protocol::record::Attachment>| {
        x.as_ref().map(|x| AttachedView {
            cid: x.content.to_string(),
            size: x.size,
        })
    };
    AttachmentsView {
        readme: one(&a.readme),
        license_text: one(&a.license_text),
        source_archive: one(&a.source_archive),
        repository: a.source.as_ref().and_then(|s| s.repository.clone()),
        revision: a.source.as_ref().and_then(|s| s.revision.clone()),
        assets: a.assets.as_ref().map(|x| AssetsView {
            cid: x.tree.content.to_string(),
            size: x.tree.size,
            files: x.files,
            bytes: x.bytes,
        }),
    }
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
    let verdict = shared.index.summary_verdict(&e.record)?;
    let summary = e.summary.clone().unwrap_or_default();
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
        imports: summary.imports,
        exports: summary.exports,
        capabilities: summary.capabilities,
        wit_package: summary.wit_package,
        interfaces: summary.interfaces,
        worlds: summary.worlds,
        metadata: summary.metadata,
        attachments: attachments_view(&e.attachments),
        summary: match &verdict {
            Some(Ok(())) => "verified",
            Some(Err(_)) => "refused",
            None => "announced",
        },
        summary_problem: verdict.and_then(|v| v.err()),
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
                        v.yanked.is_none()
                            && v.deleted.is_none()
                            && v.summary_problem.is_none()
                            && want.matches(&r.version)
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
    if let Some(why) = &view.summary_problem {
        return Err(lying(&entry, why));
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

/// The refusal of a release whose summary lies about its bytes.
pub fn lying(entry: &ReleaseEntry, why: &str) -> ApiError {
    ApiError(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        format!(
            "{}@{} refused: its signed summary does not match its content ({why}); it was signed by {}",
            entry.package, entry.version, entry.publisher
        ),
    )
}

/// Checks a downloaded release's announced summary against its bytes once, remembering
/// the verdict; a lying release is refused from then on.
pub fn check_summary(shared: &Arc<Shared>, entry: &ReleaseEntry) -> Result<(), ApiError> {
    let Some(announced) = &entry.summary else {
        return Ok(());
    };
    if let Some(v) = shared.index.summary_verdict(&entry.record)? {
        return v.map_err(|why| lying(entry, &why));
    }
    let _serving = shared.serving(entry.content);
    let path = shared.blobs.path(&entry.content).ok_or_else(|| {
        not_found(format!(
            "{} is not stored on this node yet: fetch it first",
            entry.content
        ))
    })?;
    let bytes = std::fs::read(&path).map_err(|e| not_found(format!("{}: {e}", path.display())))?;
    let verdict = match ferry_protocol::component::check(&bytes) {
        Ok(c) if c.kind != entry.kind => Err(format!(
            "it announces a {:?} but the bytes are a {:?}",
            entry.kind, c.kind
        )),
        Ok(c) => match ferry_protocol::component::analysis::difference(announced, &c.summary) {
            Some(d) => Err(d),
            None => Ok(()),
        },
        Err(e) => Err(format!("the bytes are not a valid package: {e}")),
    };
    shared.index.set_summary_verdict(&entry.record, &verdict)?;
    if let Err(why) = &verdict {
        tracing::warn!(target: "ferry::fetch", record = %entry.record, "{}@{}: summary lies: {why}", entry.package, entry.version);
    }
    verdict.map_err(|why| lying(entry, &why))
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

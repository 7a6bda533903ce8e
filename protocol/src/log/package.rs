//! Validation of package logs: init, releases, grants, yanks, fork resolution.

use semver::Version;

use super::{
    Fork, GrantState, Head, MAX_BLOB_BYTES, MAX_DESCRIPTION_BYTES, MAX_LICENSE_BYTES,
    OperatorState, PackageState, Rejection, VersionState, Yanked, check_common,
};
use crate::chunk;
use crate::content_id::RecordId;
use crate::envelope::SignedRecord;
use crate::key::PublicKey;
use crate::name::PackageName;
use crate::record::{Body, Perm, Release};

/// Longest yank reason, in bytes.
pub const MAX_YANK_REASON_BYTES: usize = 1024;

/// Checks a release's own fields.
pub fn check_release(rel: &Release) -> Result<Version, Rejection> {
    let version = Version::parse(&rel.version)
        .map_err(|_| Rejection::MalformedVersion(rel.version.clone()))?;
    if rel.size > MAX_BLOB_BYTES {
        return Err(Rejection::BadRelease(format!(
            "size {} is over the {MAX_BLOB_BYTES}-byte limit",
            rel.size
        )));
    }
    if rel.chunk_size != chunk::CHUNK_SIZE {
        return Err(Rejection::BadRelease(format!(
            "chunk size {} is not {}",
            rel.chunk_size,
            chunk::CHUNK_SIZE
        )));
    }
    let want = chunk::count(rel.size, rel.chunk_size).saturating_mul(32);
    if rel.chunks.len() as u64 != want {
        return Err(Rejection::BadRelease(format!(
            "{} bytes of chunk digests for {} bytes of content, expected {want}",
            rel.chunks.len(),
            rel.size
        )));
    }
    if rel.size <= u64::from(rel.chunk_size)
        && rel.size > 0
        && chunk::digest_at(&rel.chunks, 0) != Some(*rel.content.digest())
    {
        // A single-chunk blob's chunk digest is its content digest; a mismatch means
        // the release contradicts itself and no download could ever satisfy both.
        return Err(Rejection::BadRelease(
            "chunk digest differs from the content id".into(),
        ));
    }
    if rel
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES)
    {
        return Err(Rejection::OverLimit(format!(
            "description longer than {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    if rel
        .license
        .as_ref()
        .is_some_and(|l| l.len() > MAX_LICENSE_BYTES)
    {
        return Err(Rejection::OverLimit(format!(
            "license longer than {MAX_LICENSE_BYTES} bytes"
        )));
    }
    if rel.summary.is_none() {
        return Err(Rejection::BadRelease(
            "no summary of imports and exports: publish it with a current ferry".into(),
        ));
    }
    for (name, a) in rel.attachments.blobs() {
        check_attachment(name, a)?;
    }
    if let Some(a) = &rel.attachments.assets {
        if a.files > crate::assets::MAX_ASSET_FILES as u64 {
            return Err(Rejection::OverLimit(format!(
                "assets tree of {} files, over the limit of {}",
                a.files,
                crate::assets::MAX_ASSET_FILES
            )));
        }
        if a.bytes > crate::assets::MAX_ASSETS_BYTES {
            return Err(Rejection::OverLimit(format!(
                "assets of {} bytes, over the limit of {}",
                a.bytes,
                crate::assets::MAX_ASSETS_BYTES
            )));
        }
    }
    if let Some(src) = &rel.attachments.source {
        let long = [&src.repository, &src.revision]
            .into_iter()
            .flatten()
            .any(|t| t.len() > MAX_SOURCE_REF_BYTES);
        if long {
            return Err(Rejection::OverLimit(format!(
                "source reference longer than {MAX_SOURCE_REF_BYTES} bytes"
            )));
        }
    }
    Ok(version)
}

/// Longest repository URL or revision in a source reference.
pub const MAX_SOURCE_REF_BYTES: usize = 1024;
/// Largest README or license text (16 MiB): documents, not payloads.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// Checks that an attachment's chunk digests fit its size, as for the content.
fn check_attachment(name: &str, a: &crate::record::Attachment) -> Result<(), Rejection> {
    let max = match name {
        "source-archive" => MAX_BLOB_BYTES,
        "assets" => crate::assets::MAX_TREE_BYTES,
        _ => MAX_DOCUMENT_BYTES,
    };
    if a.size > max || a.size == 0 {
        return Err(Rejection::BadRelease(format!(
            "{name} attachment of {} bytes: it must be 1 to {max} bytes",
            a.size
        )));
    }
    let want = chunk::count(a.size, chunk::CHUNK_SIZE).saturating_mul(32);
    if a.chunks.len() as u64 != want
        || (a.size <= u64::from(chunk::CHUNK_SIZE)
            && chunk::digest_at(&a.chunks, 0) != Some(*a.content.digest()))
    {
        return Err(Rejection::BadRelease(format!(
            "{name} attachment's chunk digests do not fit its size and id"
        )));
    }
    Ok(())
}

/// The record that gives `key` permission `perm` on `package`: a namespace definition
/// or grant (owners may do everything), or a package grant.
pub fn authority(
    op: &OperatorState,
    state: Option<&PackageState>,
    package: &PackageName,
    key: &PublicKey,
    perm: Perm,
) -> Result<RecordId, Rejection> {
    let ns = package.namespace();
    let owners = op
        .namespaces
        .get(ns)
        .ok_or_else(|| Rejection::NamespaceNotDefined(ns.clone()))?;
    if let Some(rec) = owners.get(key) {
        return Ok(*rec);
    }
    if let Some(g) = state.and_then(|s| s.grants.get(key)) {
        if g.perms.contains(&perm) {
            return Ok(g.record);
        }
        return Err(Rejection::MissingPermission {
            key: *key,
            perm,
            package: package.clone(),
        });
    }
    if state.is_some_and(|s| s.revoked.contains(key)) {
        return Err(Rejection::RevokedKey {
            key: *key,
            log: package.to_string(),
        });
    }
    if op.revoked.contains(key) {
        return Err(Rejection::RevokedKey {
            key: *key,
            log: ns.to_string(),
        });
    }
    Err(Rejection::NotAllowedInNamespace {
        key: *key,
        namespace: ns.clone(),
        action: match perm {
            Perm::Release => "publish releases",
            Perm::Yank => "yank releases",
        },
        why: "it is not an owner and holds no grant on the package",
    })
}

/// Checks that `key` owns the namespace of `package`: creating packages, managing
/// keys and resolving forks are for owners only. `action` names what was tried.
fn owner_only(
    op: &OperatorState,
    package: &PackageName,
    key: &PublicKey,
    action: &'static str,
) -> Result<RecordId, Rejection> {
    // Grants of the package confer release/yank only: managing keys stays with owners.
    authority(op, None, package, key, Perm::Release).map_err(|e| match e {
        Rejection::NotAllowedInNamespace { key, namespace, .. } => {
            Rejection::NotAllowedInNamespace {
                key,
                namespace,
                action,
                why: "only its owners may (a package grant covers releases and yanks only)",
            }
        }
        other => other,
    })
}

fn check_license(
    op: &OperatorState,
    package: &PackageName,
    version: &Version,
    rel: &Release,
) -> Result<(), Rejection> {
    if !op.policy.require_spdx {
        return Ok(());
    }
    let Some(license) = rel.license.as_deref().filter(|l| !l.trim().is_empty()) else {
        return Err(Rejection::LicenseRequired {
            release: format!("{package}@{version}"),
        });
    };
    spdx::Expression::parse(license)
        .map(|_| ())
        .map_err(|e| Rejection::InvalidLicense {
            release: format!("{package}@{version}"),
            license: license.to_string(),
            why: e.reason.to_string(),
        })
}

/// Applies a record to a package log. `state` is `None` before the log's first record.
pub fn apply_package(
    op: &OperatorState,
    state: Option<&PackageState>,
    rec: &SignedRecord,
    now_ms: u64,
) -> Result<PackageState, Rejection> {
    let r = &rec.record;
    let package: PackageName = r.log.parse()?;
    if let Some(f) = state.and_then(|s| s.forked.as_ref()) {
        if r.seq == f.seq && f.candidates.contains(&rec.id) {
            return Err(Rejection::Stale {
                log: r.log.clone(),
                seq: r.seq,
            });
        }
        return Err(Rejection::Forked {
            log: r.log.clone(),
            seq: f.seq,
        });
    }
    // Operator deletions are not checked here: they are enforced where content is
    // served, indexed and fetched. Validation must not depend on whether a node learned
    // a tombstone before or after the records it covers, or honest logs would diverge.
    check_common(rec, Some(&op.network), state.map(|s| &s.head), now_ms)?;
    let head = Head {
        seq: r.seq,
        id: rec.id,
    };
    let Some(state) = state else {
        let Body::PackageInit { kind } = &r.body else {
            return Err(misplaced(rec));
        };
        owner_only(op, &package, &rec.signer, "create packages")?;
        return Ok(PackageState {
            package,
            kind: *kind,
            head,
            versions: Default::default(),
            grants: Default::default(),
            revoked: Default::default(),
            forked: None,
        });
    };
    let mut next = state.clone();
    next.head = head;
    match &r.body {
        Body::Release(rel) => {
            let authority = authority(op, Some(state), &package, &rec.signer, Perm::Release)?;
            let version = check_release(rel)?;
            if state.versions.contains_key(&version) {
                return Err(Rejection::VersionExists { package, version });
            }
            if rel.kind != state.kind {
                return Err(Rejection::BadRelease(format!(
                    "{package} is a {:?} package; this release is a {:?}",
                    state.kind, rel.kind
                )));
            }
            check_license(op, &package, &version, rel)?;
            next.versions.insert(
                version,
                VersionState {
                    content: rel.content,
                    record: rec.id,
                    signer: rec.signer,
                    authority,
                    yanked: None,
                },
            );
        }
        Body::Grant { key, perms } => {
            owner_only(op, &package, &rec.signer, "grant keys")?;
            if perms.is_empty() {
                return Err(Rejection::BadGrant(
                    "a grant needs at least one permission".into(),
                ));
            }
            if next.grants.len() >= super::MAX_KEYS && !next.grants.contains_key(key) {
                return Err(Rejection::BadGrant(format!(
                    "{package} already has {} granted keys",
                    super::MAX_KEYS
                )));
            }
            next.grants.insert(
                *key,
                GrantState {
                    perms: perms.iter().copied().collect(),
                    record: rec.id,
                },
            );
            next.revoked.remove(key);
        }
        Body::Revoke { key } => {
            owner_only(op, &package, &rec.signer, "revoke keys")?;
            if next.grants.remove(key).is_none() {
                return Err(Rejection::BadGrant(format!(
                    "{key} holds no grant on {package}"
                )));
            }
            next.revoked.insert(*key);
        }
        Body::Yank { version, reason } => {
            authority(op, Some(state), &package, &rec.signer, Perm::Yank)?;
            if reason
                .as_ref()
                .is_some_and(|r| r.len() > MAX_YANK_REASON_BYTES)
            {
                return Err(Rejection::OverLimit(format!(
                    "yank reason longer than {MAX_YANK_REASON_BYTES} bytes"
                )));
            }
            let v = Version::parse(version)
                .map_err(|_| Rejection::MalformedVersion(version.clone()))?;
            let vs = next
                .versions
                .get_mut(&v)
                .ok_or_else(|| Rejection::BadYank(format!("{package}@{v} was never released")))?;
            if vs.yanked.is_some() {
                return Err(Rejection::BadYank(format!(
                    "{package}@{v} is already yanked"
                )));
            }
            vs.yanked = Some(Yanked {
                reason: reason.clone(),
                record: rec.id,
            });
        }
        Body::Unyank { version } => {
            authority(op, Some(state), &package, &rec.signer, Perm::Yank)?;
            let v = Version::parse(version)
                .map_err(|_| Rejection::MalformedVersion(version.clone()))?;
            let vs = next
                .versions
                .get_mut(&v)
                .ok_or_else(|| Rejection::BadYank(format!("{package}@{v} was never released")))?;
            if vs.yanked.take().is_none() {
                return Err(Rejection::BadYank(format!("{package}@{v} is not yanked")));
            }
        }
        _ => return Err(misplaced(rec)),
    }
    Ok(next)
}

fn misplaced(rec: &SignedRecord) -> Rejection {
    Rejection::Misplaced {
        body: rec.record.body.kind(),
        log: rec.record.log.clone(),
        seq: rec.record.seq,
    }
}

/// The state of a log that was found to hold conflicting records at `fork.seq`: the
/// prefix before them (`prefix`, i.e. the state after `fork.seq - 1`), frozen.
pub fn forked(prefix: Option<&PackageState>, fork: Fork) -> Option<PackageState> {
    prefix.map(|p| PackageState {
        forked: Some(fork),
        ..p.clone()
    })
}

/// Resolves a fork: applies the kept candidate `keep`, then the owner's `resolve-fork`
/// record right after it.
pub fn resolve_fork(
    op: &OperatorState,
    state: &PackageState,
    keep: &SignedRecord,
    resolution: &SignedRecord,
    now_ms: u64,
) -> Result<PackageState, Rejection> {
    let r = &resolution.record;
    let Some(fork) = &state.forked else {
        return Err(misplaced(resolution));
    };
    let Body::ResolveFork { keep: keep_id } = &r.body else {
        return Err(Rejection::Forked {
            log: r.log.clone(),
            seq: fork.seq,
        });
    };
    if *keep_id != keep.id || !fork.candidates.contains(&keep.id) || r.prev != Some(keep.id) {
        return Err(Rejection::BadGrant(format!(
            "resolution of `{}` must keep one of the conflicting records and follow it",
            r.log
        )));
    }
    let package: PackageName = r.log.parse()?;
    owner_only(op, &package, &resolution.signer, "resolve forks")?;
    let unforked = PackageState {
        forked: None,
        ..state.clone()
    };
    let mut next = apply_package(op, Some(&unforked), keep, now_ms)?;
    check_common(resolution, Some(&op.network), Some(&next.head), now_ms)?;
    next.head = Head {
        seq: r.seq,
        id: resolution.id,
    };
    Ok(next)
}

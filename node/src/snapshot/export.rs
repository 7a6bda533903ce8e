//! Writing a snapshot of the logs and blobs a filter covers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use ferry_protocol::filter::{Candidate, Filter};
use ferry_protocol::record::{ATTEST_LOG_PREFIX, Body, OPERATOR_LOG};
use ferry_protocol::{ContentId, PackageName, RecordId, SignedRecord};
use serde_bytes::ByteBuf;

use super::{
    BLOBS_DIR, BlobInfo, MANIFEST_FILE, Manifest, MissingBlob, RECORDS_FILE, RecordsInfo,
    SNAPSHOT_FORMAT,
};
use crate::blob_store::BlobStore;
use crate::index::{Index, IndexError};

/// Records read from the index per call.
const PAGE: usize = 1024;

/// Why an export failed. A failed export may leave a partial directory without a
/// manifest, which an import refuses.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// File system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The target directory holds files.
    #[error("{0} is not empty: export into a new or empty directory")]
    NotEmpty(PathBuf),
    /// The filter has no include pattern.
    #[error("the filter includes no package: give at least one pattern, e.g. --filter 'wasi:*'")]
    EmptyFilter,
    /// Nothing to export yet.
    #[error("this node has not learned its network's operator log yet: nothing to export")]
    NotSynced,
    /// Reading the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every record of `log` in order, plus the conflicting records kept as evidence when
/// the log is forked (so an importer sees the same fork).
fn log_records(index: &Index, log: &str) -> Result<Vec<Vec<u8>>, IndexError> {
    let mut out = Vec::new();
    loop {
        let page = index.records_from(log, out.len() as u64, PAGE)?;
        let n = page.len();
        out.extend(page);
        if n < PAGE {
            break;
        }
    }
    if let Some((_, fork)) = index.head(log)? {
        for id in fork {
            if let Some(b) = index.evidence(&id)? {
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// Names of all attester logs.
fn attester_logs(index: &Index) -> Result<Vec<String>, IndexError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (heads, more) = index.heads(after.as_deref(), PAGE)?;
        after = heads.last().map(|h| h.log.clone());
        out.extend(
            heads
                .into_iter()
                .map(|h| h.log)
                .filter(|l| l.starts_with(ATTEST_LOG_PREFIX)),
        );
        if !more {
            return Ok(out);
        }
    }
}

/// Writes a snapshot of what `filter` covers into `dir` (created if needed; it must be
/// empty) and returns its manifest.
///
/// Package logs are read before the operator log and attester logs after them, so that
/// on a running node, whose index may grow meanwhile, the operator log is at least as
/// new as every package record needs, and an attestation is kept only when the release
/// it names was exported (an attester log is cut before its first record about a
/// release outside the snapshot, since a log cannot have holes).
pub fn export(
    index: &Index,
    blobs: &BlobStore,
    filter: &Filter,
    dir: &Path,
    now_ms: u64,
) -> Result<Manifest, ExportError> {
    if filter.include.is_empty() {
        return Err(ExportError::EmptyFilter);
    }
    if index.operator_state()?.is_none() {
        return Err(ExportError::NotSynced);
    }
    match fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(ExportError::NotEmpty(dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io(dir))?;
        }
        Err(e) => return Err(io(dir)(e)),
    }
    let blob_dir = dir.join(BLOBS_DIR);
    fs::create_dir(&blob_dir).map_err(io(&blob_dir))?;

    let packages: Vec<PackageName> = index
        .packages()?
        .into_iter()
        .filter(|p| filter.covers_package(p))
        .collect();
    let mut package_records = Vec::new();
    let mut releases: BTreeSet<RecordId> = BTreeSet::new();
    for p in &packages {
        for bytes in log_records(index, &p.to_string())? {
            if let Ok(rec) = SignedRecord::decode(&bytes)
                && matches!(rec.record.body, Body::Release(_))
            {
                releases.insert(rec.id);
            }
            package_records.push(bytes);
        }
    }
    let operator = log_records(index, OPERATOR_LOG)?;
    let mut attest_records = Vec::new();
    for log in attester_logs(index)? {
        for bytes in log_records(index, &log)? {
            let about_exported = SignedRecord::decode(&bytes).is_ok_and(
                |r| matches!(&r.record.body, Body::Attest(a) if releases.contains(&a.release)),
            );
            if !about_exported {
                break;
            }
            attest_records.push(bytes);
        }
    }

    // Each record once, in log order: operator, packages, attesters.
    let mut seen = BTreeSet::new();
    let records: Vec<ByteBuf> = operator
        .into_iter()
        .chain(package_records)
        .chain(attest_records)
        .filter(|b| seen.insert(RecordId::of(b)))
        .map(ByteBuf::from)
        .collect();

    let (included, missing) = copy_blobs(index, blobs, filter, &packages, &blob_dir)?;

    let mut cbor = Vec::new();
    ciborium::into_writer(&records, &mut cbor)
        .map_err(|e| io(dir)(std::io::Error::other(e.to_string())))?;
    let records_path = dir.join(RECORDS_FILE);
    write_synced(&records_path, &cbor)?;
    let manifest = Manifest {
        format: SNAPSHOT_FORMAT,
        network: index.network(),
        filter: filter.clone(),
        created_ms: now_ms,
        records: RecordsInfo {
            count: records.len() as u64,
            sha256: hex::encode(ferry_protocol::content_id::sha256(&cbor)),
        },
        packages: packages.iter().map(|p| p.to_string()).collect(),
        blobs: included,
        missing,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| io(dir)(std::io::Error::other(e.to_string())))?;
    // The manifest goes last: a directory without one is an interrupted export.
    write_synced(&dir.join(MANIFEST_FILE), &json)?;
    Ok(manifest)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    use std::io::Write;
    let mut f = fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Copies the blobs of every admitted release of `packages` that this node holds into
/// `blob_dir`; returns those included and those left out with the reason.
fn copy_blobs(
    index: &Index,
    blobs: &BlobStore,
    filter: &Filter,
    packages: &[PackageName],
    blob_dir: &Path,
) -> Result<(Vec<BlobInfo>, Vec<MissingBlob>), ExportError> {
    let op = index.operator_state()?;
    let mut wanted: BTreeMap<ContentId, (BlobInfo, Option<String>)> = BTreeMap::new();
    for p in packages {
        for e in index.releases(p)? {
            let candidate = Candidate {
                package: &e.package,
                license: e.license.as_deref(),
                signer: &e.publisher,
                size: e.size,
            };
            if filter.admits(&candidate).is_err() {
                continue;
            }
            let (pkg, ver) = (e.package.to_string(), e.version.to_string());
            let deleted = op
                .as_ref()
                .and_then(|o| o.deletion(&pkg, Some(&ver), Some(&e.content)))
                .map(|t| format!("deleted by the network operator: {}", t.reason));
            let all = std::iter::once(("content", e.content, e.size)).chain(
                e.attachments
                    .blobs()
                    .map(|(role, a)| (role, a.content, a.size)),
            );
            for (role, cid, size) in all {
                let info = BlobInfo {
                    cid,
                    size,
                    package: pkg.clone(),
                    version: ver.clone(),
                    role: role.to_string(),
                };
                wanted.entry(cid).or_insert((info, deleted.clone()));
            }
        }
    }
    let mut included = Vec::new();
    let mut missing = Vec::new();
    for (cid, (info, deleted)) in wanted {
        if let Some(reason) = deleted {
            missing.push(MissingBlob { blob: info, reason });
            continue;
        }
        let Some(src) = blobs.path(&cid) else {
            missing.push(MissingBlob {
                blob: info,
                reason: "not stored on the exporting node (fetch it there first)".into(),
            });
            continue;
        };
        let to = blob_dir.join(cid.to_string());
        fs::copy(&src, &to).map_err(io(&to))?;
        included.push(info);
    }
    Ok((included, missing))
}

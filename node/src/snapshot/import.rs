//! Reading and importing a snapshot: everything is checked before anything is stored.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use ferry_protocol::record::Body;
use ferry_protocol::{ContentId, NetworkId, SignedRecord};
use serde::Serialize;
use serde_bytes::ByteBuf;

use super::{
    BLOBS_DIR, MANIFEST_FILE, MAX_BLOBS, MAX_MANIFEST_BYTES, MAX_RECORDS, MAX_RECORDS_FILE_BYTES,
    Manifest, RECORDS_FILE, SNAPSHOT_FORMAT,
};
use crate::blob_store::{BlobError, BlobStore, Staged};
use crate::index::{Applied, BatchError, Effect, Index, IndexError};

/// Why a snapshot was refused. Every variant names the file at fault; nothing of a
/// refused snapshot is stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// File system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file or directory is not what a snapshot holds.
    #[error("{path}: {why}")]
    Invalid {
        /// The path at fault.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A record does not validate.
    #[error("{path}: {source}")]
    Record {
        /// The records file.
        path: PathBuf,
        /// Which record and why.
        source: BatchError,
    },
    /// A blob file does not match its CID or size.
    #[error("{path}: {source}")]
    Blob {
        /// The blob file.
        path: PathBuf,
        /// What is wrong.
        source: BlobError,
    },
    /// The snapshot belongs to another network than the index it was offered to.
    #[error(
        "{dir} is a snapshot of network {snapshot}, but this node follows {node}: import it on a node initialized with `ferry init --network {snapshot}`, or into a mirror of that network"
    )]
    WrongNetwork {
        /// The snapshot directory.
        dir: PathBuf,
        /// Its network.
        snapshot: NetworkId,
        /// The index's network.
        node: NetworkId,
    },
    /// Storage failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, why: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// One blob file, checked for name, kind and size (not yet hashed).
#[derive(Debug, Clone)]
struct BlobFile {
    id: ContentId,
    size: u64,
    path: PathBuf,
}

/// A snapshot directory whose structure, manifest, record signatures and blob sizes
/// have been checked. Records are validated against logs, and blobs hashed, by
/// [`Snapshot::import`].
#[derive(Debug)]
pub struct Snapshot {
    dir: PathBuf,
    manifest: Manifest,
    records: Vec<SignedRecord>,
    blobs: Vec<BlobFile>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// The snapshot directory.
    pub dir: String,
    /// The network.
    pub network: NetworkId,
    /// Records in the snapshot.
    pub records: usize,
    /// Records this node did not have before.
    pub new_records: usize,
    /// Packages included.
    pub packages: Vec<String>,
    /// Blobs stored by this import.
    pub new_blobs: Vec<ContentId>,
    /// Blobs in the snapshot this node already held (checked all the same).
    pub known_blobs: usize,
    /// Covered blobs the snapshot said it lacks.
    pub missing_blobs: usize,
    /// What the new records mean for a running node (subscriptions, deletions).
    #[serde(skip)]
    pub effects: Vec<Effect>,
}

/// Reads a regular file of at most `max` bytes, refusing links and larger files before
/// reading any byte.
fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, ImportError> {
    let meta = fs::symlink_metadata(path).map_err(io(path))?;
    if !meta.file_type().is_file() {
        return Err(invalid(path, "not a regular file (links are refused)"));
    }
    if meta.len() > max {
        return Err(invalid(
            path,
            format!("{} bytes, over the {max}-byte limit", meta.len()),
        ));
    }
    fs::read(path).map_err(io(path))
}

impl Snapshot {
    /// Checks the directory: only `manifest.json`, `records.cbor` and `blobs/`, regular
    /// files under their limits, a manifest of a known format, a records file matching
    /// the manifest's digest and count whose every record is well signed and belongs to
    /// the manifest's network, starting with its genesis; and blob files named by
    /// canonical CIDs, each listed in the manifest, named by a release in the records,
    /// and exactly the size that release announces.
    pub fn open(dir: &Path) -> Result<Self, ImportError> {
        let meta = fs::metadata(dir).map_err(io(dir))?;
        if !meta.is_dir() {
            return Err(invalid(dir, "not a directory"));
        }
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            let name = entry.file_name();
            let ok = match name.to_str() {
                Some(MANIFEST_FILE) | Some(RECORDS_FILE) => kind.is_file(),
                Some(BLOBS_DIR) => kind.is_dir(),
                _ => false,
            };
            if !ok {
                return Err(invalid(
                    &path,
                    "unexpected entry: a snapshot holds only manifest.json, records.cbor and blobs/ (regular files, no links)",
                ));
            }
        }
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest: Manifest =
            serde_json::from_slice(&read_limited(&manifest_path, MAX_MANIFEST_BYTES)?)
                .map_err(|e| invalid(&manifest_path, format!("not a snapshot manifest: {e}")))?;
        if manifest.format != SNAPSHOT_FORMAT {
            return Err(invalid(
                &manifest_path,
                format!(
                    "snapshot format {} is not the one this ferry reads ({SNAPSHOT_FORMAT})",
                    manifest.format
                ),
            ));
        }
        let records_path = dir.join(RECORDS_FILE);
        let records = read_records(&records_path, &manifest)?;
        let blobs = check_blobs(dir, &manifest_path, &manifest, &records)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            records,
            blobs,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The network the snapshot belongs to.
    pub fn network(&self) -> NetworkId {
        self.manifest.network
    }

    /// Imports into `index` and `blobs`, all or nothing: a dry run validates every
    /// record against the index as it is (nothing written), then every blob is copied
    /// into the store's staging area while being hashed against its CID, then the
    /// records are applied in one transaction, and only then are the blobs made
    /// visible. A refusal at any step leaves the index and the blob store unchanged.
    pub fn import(
        &self,
        index: &Index,
        blobs: &BlobStore,
        now_ms: u64,
    ) -> Result<Imported, ImportError> {
        if index.network() != self.manifest.network {
            return Err(ImportError::WrongNetwork {
                dir: self.dir.clone(),
                snapshot: self.manifest.network,
                node: index.network(),
            });
        }
        let records_path = self.dir.join(RECORDS_FILE);
        let record_err = |source| ImportError::Record {
            path: records_path.clone(),
            source,
        };
        index
            .ingest_all(&self.records, now_ms, false)
            .map_err(record_err)?;
        let mut staged: Vec<Staged> = Vec::new();
        let mut known = 0;
        for b in &self.blobs {
            let blob_err = |source| ImportError::Blob {
                path: b.path.clone(),
                source,
            };
            if blobs.has(&b.id) {
                BlobStore::verify_file(&b.path, &b.id, b.size).map_err(blob_err)?;
                known += 1;
            } else {
                staged.push(blobs.stage(&b.path, &b.id, b.size).map_err(blob_err)?);
            }
        }
        let applied = index
            .ingest_all(&self.records, now_ms, true)
            .map_err(record_err)?;
        let mut new_blobs = Vec::new();
        let op = index.operator_state()?;
        for s in staged {
            let id = s.id();
            if let Some(op) = &op
                && deleted(index, op, &id)?
            {
                // The snapshot's own operator log deletes it: never store it.
                continue;
            }
            blobs
                .install_staged(s)
                .map_err(|source| ImportError::Blob {
                    path: self.dir.join(BLOBS_DIR).join(id.to_string()),
                    source,
                })?;
            new_blobs.push(id);
        }
        // The user brought these blobs here: hold them like blobs the user fetched, so
        // that garbage collection does not free what the import just stored.
        for b in &self.blobs {
            if blobs.has(&b.id) {
                index.touch_cache(&b.id, now_ms)?;
            }
        }
        let mut new_records = 0;
        let mut effects = Vec::new();
        for a in applied {
            match a {
                Applied::Duplicate => {}
                Applied::Forked { .. } => new_records += 1,
                Applied::New { effect, .. } => {
                    new_records += 1;
                    effects.push(effect);
                }
            }
        }
        Ok(Imported {
            dir: self.dir.display().to_string(),
            network: self.manifest.network,
            records: self.records.len(),
            new_records,
            packages: self.manifest.packages.clone(),
            new_blobs,
            known_blobs: known,
            missing_blobs: self.manifest.missing.len(),
            effects,
        })
    }
}

/// Whether an operator tombstone covers `id`, directly or through a release of it.
fn deleted(
    index: &Index,
    op: &ferry_protocol::log::OperatorState,
    id: &ContentId,
) -> Result<bool, IndexError> {
    if op.deletion("", None, Some(id)).is_some() {
        return Ok(true);
    }
    Ok(index.releases_by_content(id)?.iter().any(|r| {
        op.deletion(
            &r.package.to_string(),
            Some(&r.version.to_string()),
            Some(id),
        )
        .is_some()
    }))
}

fn read_records(path: &Path, manifest: &Manifest) -> Result<Vec<SignedRecord>, ImportError> {
    let bytes = read_limited(path, MAX_RECORDS_FILE_BYTES)?;
    let digest = hex::encode(ferry_protocol::content_id::sha256(&bytes));
    if digest != manifest.records.sha256 {
        return Err(invalid(
            path,
            "its SHA-256 differs from the one in manifest.json: the file was changed or truncated",
        ));
    }
    let raw: Vec<ByteBuf> = ciborium::from_reader(bytes.as_slice())
        .map_err(|e| invalid(path, format!("not a CBOR array of records: {e}")))?;
    if raw.len() as u64 != manifest.records.count || raw.len() > MAX_RECORDS {
        return Err(invalid(
            path,
            format!(
                "holds {} records; manifest.json says {} (at most {MAX_RECORDS} are read)",
                raw.len(),
                manifest.records.count
            ),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, b) in raw.iter().enumerate() {
        let rec =
            SignedRecord::decode(b).map_err(|e| invalid(path, format!("record #{i}: {e}")))?;
        let network_ok = if i == 0 {
            rec.id == manifest.network
        } else {
            rec.record.network == Some(manifest.network)
        };
        if !network_ok {
            return Err(invalid(
                path,
                format!(
                    "record #{i} ({}) is not {} network {}",
                    rec.id,
                    if i == 0 { "the genesis of" } else { "of" },
                    manifest.network
                ),
            ));
        }
        out.push(rec);
    }
    if out.is_empty() {
        return Err(invalid(path, "holds no record (not even the genesis)"));
    }
    Ok(out)
}

/// Blob ids named by releases in `records`, with the size each release announces.
fn released_blobs(records: &[SignedRecord]) -> BTreeMap<ContentId, u64> {
    let mut out = BTreeMap::new();
    for r in records {
        if let Body::Release(rel) = &r.record.body {
            out.insert(rel.content, rel.size);
            for (_, a) in rel.attachments.blobs() {
                out.insert(a.content, a.size);
            }
        }
    }
    out
}

fn check_blobs(
    dir: &Path,
    manifest_path: &Path,
    manifest: &Manifest,
    records: &[SignedRecord],
) -> Result<Vec<BlobFile>, ImportError> {
    let released = released_blobs(records);
    if manifest.blobs.len() > MAX_BLOBS {
        return Err(invalid(
            manifest_path,
            format!(
                "lists {} blobs, over the {MAX_BLOBS} limit",
                manifest.blobs.len()
            ),
        ));
    }
    let mut listed: BTreeMap<ContentId, u64> = BTreeMap::new();
    for b in &manifest.blobs {
        match released.get(&b.cid) {
            Some(size) if *size == b.size => {
                listed.insert(b.cid, b.size);
            }
            Some(size) => {
                return Err(invalid(
                    manifest_path,
                    format!(
                        "lists blob {} as {} bytes; its release says {size}",
                        b.cid, b.size
                    ),
                ));
            }
            None => {
                return Err(invalid(
                    manifest_path,
                    format!("lists blob {} that no release in records.cbor names", b.cid),
                ));
            }
        }
    }
    let blob_dir = dir.join(BLOBS_DIR);
    let mut found = BTreeSet::new();
    let mut out = Vec::new();
    match fs::symlink_metadata(&blob_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(invalid(&blob_dir, "not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && listed.is_empty() => {
            return Ok(out);
        }
        Err(e) => return Err(io(&blob_dir)(e)),
    }
    for entry in fs::read_dir(&blob_dir).map_err(io(&blob_dir))? {
        let entry = entry.map_err(io(&blob_dir))?;
        let path = entry.path();
        if found.len() >= MAX_BLOBS {
            return Err(invalid(
                &blob_dir,
                format!("holds more than {MAX_BLOBS} files"),
            ));
        }
        // Only a canonical CID names a blob: no other spelling, no path, no link.
        let id = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<ContentId>().ok().filter(|id| id.to_string() == n))
            .ok_or_else(|| invalid(&path, "not named by a content id (bafk...)"))?;
        let kind = entry.file_type().map_err(io(&path))?;
        if !kind.is_file() {
            return Err(invalid(&path, "not a regular file (links are refused)"));
        }
        let size = *listed
            .get(&id)
            .ok_or_else(|| invalid(&path, "not listed in manifest.json"))?;
        let len = entry.metadata().map_err(io(&path))?.len();
        if len != size {
            return Err(ImportError::Blob {
                path,
                source: BlobError::WrongSize {
                    content: id,
                    expected: size,
                    larger: len > size,
                },
            });
        }
        found.insert(id);
        out.push(BlobFile { id, size, path });
    }
    if let Some(absent) = listed.keys().find(|id| !found.contains(*id)) {
        return Err(invalid(
            manifest_path,
            format!("lists blob {absent} but {BLOBS_DIR}/{absent} is absent"),
        ));
    }
    Ok(out)
}

//! The redb index: records, log heads and states, releases, content → release, and a
//! token index for search.
//!
//! Every record is applied in one write transaction together with all index entries it
//! implies, so a crash leaves the index at a record boundary. Table names carry the
//! schema version; a node refuses a database written by a newer schema.

use std::path::Path;

use ferry_protocol::component::PackageKind;
use ferry_protocol::content_id::RecordId;
use ferry_protocol::log::{self, Head, OperatorState, PackageState, Rejection};
use ferry_protocol::record::{Body, NetworkId, OPERATOR_LOG};
use ferry_protocol::wire::LogHead;
use ferry_protocol::{ContentId, Namespace, PackageName, PublicKey, SignedRecord};
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};
use serde::{Deserialize, Serialize};

mod search;
pub use search::SearchHit;

/// Schema version of the tables below.
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records_v1");
const LOG_SEQ: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("log_seq_v1");
const LOG_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("log_state_v1");
const RELEASES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("releases_v1");
const BY_CONTENT: MultimapTableDefinition<&[u8], (&str, &str)> =
    MultimapTableDefinition::new("by_content_v1");
const TOKENS: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("tokens_v1");
const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending_fetch_v1");

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The storage engine failed.
    #[error("index storage: {0}")]
    Storage(String),
    /// The database was written by a newer ferry.
    #[error(
        "index schema {found} is newer than this ferry supports ({SCHEMA_VERSION}): upgrade ferry"
    )]
    NewerSchema {
        /// Schema found.
        found: u64,
    },
    /// A stored value does not decode.
    #[error("index entry corrupt: {0}")]
    Corrupt(String),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for IndexError {
            fn from(e: $t) -> Self {
                IndexError::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why ingesting a record did not apply it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The protocol refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A different record already holds that position: an equivocation by its signer.
    #[error("conflict in `{log}` at seq {seq}: {existing} is stored, {offered} was offered")]
    Conflict {
        /// Log.
        log: String,
        /// Seq.
        seq: u64,
        /// The stored record.
        existing: RecordId,
        /// The offered one.
        offered: RecordId,
    },
    /// Storage failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// One released version, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseEntry {
    /// Package.
    pub package: PackageName,
    /// Version.
    pub version: semver::Version,
    /// Component or WIT package.
    pub kind: PackageKind,
    /// Blob id.
    pub content: ContentId,
    /// Blob size.
    pub size: u64,
    /// Chunk digests (32 bytes each).
    #[serde(with = "serde_bytes_vec")]
    pub chunks: Vec<u8>,
    /// Description.
    pub description: Option<String>,
    /// License.
    pub license: Option<String>,
    /// Signing key.
    pub publisher: PublicKey,
    /// Release record.
    pub record: RecordId,
    /// Claimed publication time.
    pub time_ms: u64,
}

mod serde_bytes_vec {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(v, s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        serde_bytes::deserialize(d)
    }
}

/// What applying a record changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Already stored: nothing changed.
    Duplicate,
    /// Appended.
    New {
        /// The log.
        log: String,
        /// Its seq.
        seq: u64,
        /// A namespace this record defined.
        namespace: Option<Namespace>,
        /// A release this record made.
        release: Option<Box<ReleaseEntry>>,
    },
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = Vec::new();
    let _ = ciborium::into_writer(v, &mut b);
    b
}

fn uncbor<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, IndexError> {
    ciborium::from_reader(b).map_err(|e| IndexError::Corrupt(e.to_string()))
}

/// The index of one network.
#[derive(Debug)]
pub struct Index {
    db: Database,
    network: NetworkId,
}

impl Index {
    /// Opens or creates the index at `path` for `network`.
    pub fn open(path: &Path, network: NetworkId) -> Result<Self, IndexError> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => return Err(IndexError::NewerSchema { found: v }),
                Some(_) => {}
                None => {
                    meta.insert("schema", SCHEMA_VERSION)?;
                }
            }
            // Create every table so that readers never see "table does not exist".
            tx.open_table(RECORDS)?;
            tx.open_table(LOG_SEQ)?;
            tx.open_table(LOG_STATE)?;
            tx.open_table(RELEASES)?;
            tx.open_multimap_table(BY_CONTENT)?;
            tx.open_multimap_table(TOKENS)?;
            tx.open_table(PENDING)?;
        }
        tx.commit()?;
        Ok(Self { db, network })
    }

    /// The network this index belongs to.
    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// The operator log's state, once the genesis is known.
    pub fn operator_state(&self) -> Result<Option<OperatorState>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(LOG_STATE)?;
        t.get(OPERATOR_LOG)?.map(|v| uncbor(v.value())).transpose()
    }

    /// A package log's state.
    pub fn package_state(&self, package: &PackageName) -> Result<Option<PackageState>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(LOG_STATE)?;
        t.get(package.to_string().as_str())?
            .map(|v| uncbor(v.value()))
            .transpose()
    }

    /// Validates `rec` against the stored state of its log and, if valid, stores it with
    /// all its index entries in one transaction.
    pub fn ingest(&self, rec: &SignedRecord, now_ms: u64) -> Result<Applied, IngestError> {
        let tx = self.db.begin_write().map_err(IndexError::from)?;
        let applied = {
            let mut records = tx.open_table(RECORDS).map_err(IndexError::from)?;
            if records
                .get(rec.id.digest().as_slice())
                .map_err(IndexError::from)?
                .is_some()
            {
                return Ok(Applied::Duplicate);
            }
            let mut states = tx.open_table(LOG_STATE).map_err(IndexError::from)?;
            let mut log_seq = tx.open_table(LOG_SEQ).map_err(IndexError::from)?;
            let r = &rec.record;
            let op: Option<OperatorState> = states
                .get(OPERATOR_LOG)
                .map_err(IndexError::from)?
                .map(|v| uncbor(v.value()))
                .transpose()?;
            let result = if r.log == OPERATOR_LOG {
                log::apply_operator(&self.network, op.as_ref(), rec, now_ms)
                    .map(|s| (cbor(&s), s.head))
            } else {
                let op = op.ok_or_else(|| {
                    // Without the operator log nothing can be checked: we are behind.
                    Rejection::Gap {
                        log: OPERATOR_LOG.into(),
                        expected: 0,
                        got: 0,
                    }
                })?;
                let pkg: Option<PackageState> = states
                    .get(r.log.as_str())
                    .map_err(IndexError::from)?
                    .map(|v| uncbor(v.value()))
                    .transpose()?;
                log::apply_package(&op, pkg.as_ref(), rec, now_ms).map(|s| (cbor(&s), s.head))
            };
            let (state_bytes, head): (Vec<u8>, Head) = match result {
                Ok(x) => x,
                Err(Rejection::Stale { log, seq }) => {
                    let existing = log_seq
                        .get((log.as_str(), seq))
                        .map_err(IndexError::from)?
                        .and_then(|v| v.value().try_into().ok())
                        .map(RecordId::from_digest);
                    return match existing {
                        Some(e) if e == rec.id => Ok(Applied::Duplicate),
                        Some(existing) => Err(IngestError::Conflict {
                            log,
                            seq,
                            existing,
                            offered: rec.id,
                        }),
                        None => Err(Rejection::Stale { log, seq }.into()),
                    };
                }
                Err(e) => return Err(e.into()),
            };
            records
                .insert(rec.id.digest().as_slice(), rec.bytes.as_slice())
                .map_err(IndexError::from)?;
            log_seq
                .insert((r.log.as_str(), head.seq), rec.id.digest().as_slice())
                .map_err(IndexError::from)?;
            states
                .insert(r.log.as_str(), state_bytes.as_slice())
                .map_err(IndexError::from)?;
            let mut namespace = None;
            let mut release = None;
            match &r.body {
                Body::DefineNamespace { namespace: ns, .. } => {
                    namespace = ns.parse().ok();
                }
                Body::Release(rel) => {
                    let entry = ReleaseEntry {
                        package: r.log.parse().map_err(Rejection::from)?,
                        version: log::check_release(rel)?,
                        kind: rel.kind,
                        content: rel.content,
                        size: rel.size,
                        chunks: rel.chunks.to_vec(),
                        description: rel.description.clone(),
                        license: rel.license.clone(),
                        publisher: rec.signer,
                        record: rec.id,
                        time_ms: r.time_ms,
                    };
                    self.index_release(&tx, &entry)?;
                    release = Some(Box::new(entry));
                }
                _ => {}
            }
            Applied::New {
                log: r.log.clone(),
                seq: head.seq,
                namespace,
                release,
            }
        };
        tx.commit().map_err(IndexError::from)?;
        Ok(applied)
    }

    fn index_release(
        &self,
        tx: &redb::WriteTransaction,
        e: &ReleaseEntry,
    ) -> Result<(), IndexError> {
        let pkg = e.package.to_string();
        let ver = e.version.to_string();
        tx.open_table(RELEASES)?
            .insert((pkg.as_str(), ver.as_str()), cbor(e).as_slice())?;
        tx.open_multimap_table(BY_CONTENT)?
            .insert(e.content.digest().as_slice(), (pkg.as_str(), ver.as_str()))?;
        let mut tokens = tx.open_multimap_table(TOKENS)?;
        for t in search::tokens_of(&e.package, e.description.as_deref()) {
            tokens.insert(t.as_str(), pkg.as_str())?;
        }
        Ok(())
    }

    /// All releases of a package, oldest version first.
    pub fn releases(&self, package: &PackageName) -> Result<Vec<ReleaseEntry>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(RELEASES)?;
        let pkg = package.to_string();
        let mut out = Vec::new();
        for item in t.range((pkg.as_str(), "")..(pkg.as_str(), "\u{10ffff}"))? {
            let (_, v) = item?;
            out.push(uncbor::<ReleaseEntry>(v.value())?);
        }
        out.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(out)
    }

    /// Releases whose blob is `content`.
    pub fn releases_by_content(
        &self,
        content: &ContentId,
    ) -> Result<Vec<ReleaseEntry>, IndexError> {
        let tx = self.db.begin_read()?;
        let by = tx.open_multimap_table(BY_CONTENT)?;
        let rel = tx.open_table(RELEASES)?;
        let mut out = Vec::new();
        for v in by.get(content.digest().as_slice())? {
            let v = v?;
            let (p, ver) = v.value();
            if let Some(e) = rel.get((p, ver))? {
                out.push(uncbor(e.value())?);
            }
        }
        Ok(out)
    }

    /// Names of all packages.
    pub fn packages(&self) -> Result<Vec<PackageName>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(LOG_STATE)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, _) = item?;
            if let Ok(p) = k.value().parse() {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// A page of log heads after `after`, in name order, and whether more follow.
    pub fn heads(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LogHead>, bool), IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(LOG_STATE)?;
        let range = match after {
            Some(a) => t.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?,
            None => t.range(..)?,
        };
        let mut out = Vec::new();
        for item in range {
            let (k, v) = item?;
            if out.len() == limit {
                return Ok((out, true));
            }
            let head = if k.value() == OPERATOR_LOG {
                uncbor::<OperatorState>(v.value())?.head
            } else {
                uncbor::<PackageState>(v.value())?.head
            };
            out.push(LogHead {
                log: k.value().to_string(),
                seq: head.seq,
                id: head.id,
            });
        }
        Ok((out, false))
    }

    /// The head of one log.
    pub fn head(&self, log: &str) -> Result<Option<Head>, IndexError> {
        if log == OPERATOR_LOG {
            return Ok(self.operator_state()?.map(|s| s.head));
        }
        match log.parse::<PackageName>() {
            Ok(p) => Ok(self.package_state(&p)?.map(|s| s.head)),
            Err(_) => Ok(None),
        }
    }

    /// Envelope bytes of up to `limit` records of `log` from `from_seq` on.
    pub fn records_from(
        &self,
        log: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, IndexError> {
        let tx = self.db.begin_read()?;
        let seqs = tx.open_table(LOG_SEQ)?;
        let recs = tx.open_table(RECORDS)?;
        let mut out = Vec::new();
        for item in seqs.range((log, from_seq)..=(log, u64::MAX))? {
            if out.len() == limit {
                break;
            }
            let (_, id) = item?;
            if let Some(b) = recs.get(id.value())? {
                out.push(b.value().to_vec());
            }
        }
        Ok(out)
    }

    /// Envelope bytes of one record.
    pub fn record(&self, id: &RecordId) -> Result<Option<Vec<u8>>, IndexError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        Ok(recs
            .get(id.digest().as_slice())?
            .map(|v| v.value().to_vec()))
    }

    /// Remembers a download to finish after a restart.
    pub fn add_pending(&self, entry: &ReleaseEntry) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        tx.open_table(PENDING)?
            .insert(entry.content.digest().as_slice(), cbor(entry).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets a finished (or abandoned) download.
    pub fn remove_pending(&self, content: &ContentId) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        tx.open_table(PENDING)?
            .remove(content.digest().as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Downloads that were running when the node stopped.
    pub fn pending(&self) -> Result<Vec<ReleaseEntry>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PENDING)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(uncbor(v.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

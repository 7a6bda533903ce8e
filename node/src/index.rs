//! The redb index: records, log heads and states, releases, content → release, a
//! token index for search, pins and the holds that keep blobs.
//!
//! Every record is applied in one write transaction together with all index entries it
//! implies, so a crash leaves the index at a record boundary. Table names carry the
//! schema version; a node refuses a database written by a newer schema.

use std::path::Path;

use ferry_protocol::component::{PackageKind, Summary};
use ferry_protocol::content_id::RecordId;
use ferry_protocol::log::{AttesterState, Head, OperatorState, PackageState, Rejection, Tombstone};
use ferry_protocol::record::{
    ATTEST_LOG_PREFIX, Attachments, Attestation, Body, NetworkId, OPERATOR_LOG,
};
use ferry_protocol::wire::LogHead;
use ferry_protocol::{ContentId, Namespace, PackageName, PublicKey, SignedRecord};
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};
use serde::{Deserialize, Serialize};

mod atomic;
mod holds;
mod ingest;
mod named;
mod search;
pub use atomic::BatchError;
pub use holds::{PinnedBlob, release_blobs};
pub use named::blobs_of;
pub use search::{InterfaceQuery, InterfaceQueryError, SearchHit, SearchQuery};

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
/// Conflicting records (equivocations) and records dropped with a forked branch.
const EVIDENCE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("evidence_v1");
/// Interface → releases that export (`e:<name>`) or import (`i:<name>`) it; names
/// without their version, which the summary holds.
const INTERFACES: MultimapTableDefinition<&str, (&str, &str)> =
    MultimapTableDefinition::new("interfaces_v1");
/// Release record id → the verdict on its summary once this node checked it against
/// the bytes: empty when it matched, otherwise why it lies.
const VERDICTS: TableDefinition<&[u8], &str> = TableDefinition::new("summary_verdict_v1");
/// Release record id → attestation record ids.
const ATTESTATIONS: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("attestations_v1");

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
    /// Imports, exports, capabilities and metadata as the release announced them.
    #[serde(default)]
    pub summary: Option<Summary>,
    /// Attached files and source reference.
    #[serde(default)]
    pub attachments: Attachments,
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
    /// Already stored (or already known as evidence): nothing changed.
    Duplicate,
    /// Appended.
    New {
        /// The log.
        log: String,
        /// Its seq.
        seq: u64,
        /// What the node should do about it.
        effect: Effect,
    },
    /// The record conflicts with one at the same position: the log is now forked and
    /// both are kept as evidence.
    Forked {
        /// The log.
        log: String,
        /// The contested position.
        seq: u64,
    },
}

/// Side effects of a new record that concern the node beyond the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond the index.
    None,
    /// A namespace was defined: subscribe to its topic.
    Namespace(Namespace),
    /// A release was made.
    Release(Box<ReleaseEntry>),
    /// Content was deleted by the operator: these blobs must go.
    Deleted {
        /// The tombstone.
        tombstone: Tombstone,
        /// Blobs it removes.
        contents: Vec<ContentId>,
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
            tx.open_table(ingest::SNAPSHOTS)?;
            tx.open_table(EVIDENCE)?;
            tx.open_multimap_table(ATTESTATIONS)?;
            tx.open_multimap_table(INTERFACES)?;
            tx.open_table(VERDICTS)?;
            tx.open_table(holds::PINS)?;
            tx.open_table(holds::CACHE)?;
            tx.open_table(holds::PUBLISHED)?;
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

    /// Releases that export (`exports`) or import an interface named `base` (without
    /// version), as (package, version) pairs.
    pub fn by_interface(
        &self,
        base: &str,
        exports: bool,
    ) -> Result<Vec<(String, String)>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_multimap_table(INTERFACES)?;
        let key = format!("{}{base}", if exports { "e:" } else { "i:" });
        let mut out = Vec::new();
        for v in t.get(key.as_str())? {
            let v = v?;
            let (p, ver) = v.value();
            out.push((p.to_string(), ver.to_string()));
        }
        Ok(out)
    }

    /// One release entry.
    pub fn release(
        &self,
        package: &str,
        version: &str,
    ) -> Result<Option<ReleaseEntry>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(RELEASES)?;
        t.get((package, version))?
            .map(|v| uncbor(v.value()))
            .transpose()
    }

    /// Stores this node's verdict on a release's summary: `Ok` when it matches the
    /// bytes, otherwise why it lies. A lying release is never resolved, searched or
    /// served again by this node.
    pub fn set_summary_verdict(
        &self,
        release: &RecordId,
        verdict: &Result<(), String>,
    ) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        let why = verdict.as_ref().err().map_or("", |w| w.as_str());
        tx.open_table(VERDICTS)?
            .insert(release.digest().as_slice(), why)?;
        tx.commit()?;
        Ok(())
    }

    /// This node's verdict on a release's summary, if it checked it.
    pub fn summary_verdict(
        &self,
        release: &RecordId,
    ) -> Result<Option<Result<(), String>>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(VERDICTS)?;
        Ok(t.get(release.digest().as_slice())?.map(|v| {
            let why = v.value();
            if why.is_empty() {
                Ok(())
            } else {
                Err(why.to_string())
            }
        }))
    }

    /// Why a release's summary was found to lie, if it was.
    pub fn lying(&self, release: &RecordId) -> Result<Option<String>, IndexError> {
        Ok(self.summary_verdict(release)?.and_then(|v| v.err()))
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
            let (head, fork) = decode_head(k.value(), v.value())?;
            out.push(LogHead {
                log: k.value().to_string(),
                seq: head.seq,
                id: head.id,
                fork,
            });
        }
        Ok((out, false))
    }

    /// The head of one log, and the conflicting records if it is forked.
    pub fn head(&self, log: &str) -> Result<Option<(Head, Vec<RecordId>)>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(LOG_STATE)?;
        t.get(log)?.map(|v| decode_head(log, v.value())).transpose()
    }

    /// Whether a record is known here, applied or as evidence.
    pub fn knows(&self, id: &RecordId) -> Result<bool, IndexError> {
        let tx = self.db.begin_read()?;
        Ok(tx
            .open_table(RECORDS)?
            .get(id.digest().as_slice())?
            .is_some()
            || tx
                .open_table(EVIDENCE)?
                .get(id.digest().as_slice())?
                .is_some())
    }

    /// Attestations of a release: (record id, signer, attestation).
    pub fn attestations(
        &self,
        release: &RecordId,
    ) -> Result<Vec<(RecordId, PublicKey, Attestation)>, IndexError> {
        let tx = self.db.begin_read()?;
        let by = tx.open_multimap_table(ATTESTATIONS)?;
        let recs = tx.open_table(RECORDS)?;
        let mut out = Vec::new();
        for id in by.get(release.digest().as_slice())? {
            let id = id?;
            let Some(bytes) = recs.get(id.value())? else {
                continue;
            };
            let Ok(rec) = SignedRecord::decode(bytes.value()) else {
                continue;
            };
            if let Body::Attest(a) = rec.record.body {
                out.push((rec.id, rec.signer, a));
            }
        }
        Ok(out)
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

    /// Envelope bytes of a record kept as evidence of a fork.
    pub fn evidence(&self, id: &RecordId) -> Result<Option<Vec<u8>>, IndexError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(EVIDENCE)?;
        Ok(t.get(id.digest().as_slice())?.map(|v| v.value().to_vec()))
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

fn decode_head(log: &str, state: &[u8]) -> Result<(Head, Vec<RecordId>), IndexError> {
    Ok(if log == OPERATOR_LOG {
        let s: OperatorState = uncbor(state)?;
        (s.head, s.forked.map(|f| f.candidates).unwrap_or_default())
    } else if log.starts_with(ATTEST_LOG_PREFIX) {
        (uncbor::<AttesterState>(state)?.head, Vec::new())
    } else {
        let s: PackageState = uncbor(state)?;
        (s.head, s.forked.map(|f| f.candidates).unwrap_or_default())
    })
}

#[cfg(test)]
pub(crate) mod tests;

//! Snapshots: a filtered subset of a network written to a directory, to be carried to a
//! node that has no network at all (an air-gapped build farm, a laptop on a plane).
//!
//! ```text
//! DIR/manifest.json   network id, filter, record count and digest, the blobs it holds
//!                     and the covered blobs it lacks (written last: it marks a whole snapshot)
//! DIR/records.cbor    signed envelopes, byte for byte as stored, as one CBOR array of
//!                     byte strings: the operator log in full, then every covered package
//!                     log (with fork evidence), then attester logs about covered releases
//! DIR/blobs/<cid>     content and attachments of covered releases that the exporter held
//! ```
//!
//! Nothing in a snapshot is trusted, not even its manifest: the manifest only says what
//! the directory should hold, and an import refuses the whole snapshot, changing
//! nothing, unless every record passes the same validation as a record from a peer
//! (signatures, `prev`/`seq`, namespace ownership and grants, against the snapshot's own
//! genesis and operator log) and every blob hashes to its CID and is named by a release
//! in the snapshot. The directory may hold only the three entries above, regular files
//! only (no symbolic links), each under a size limit checked before it is read; blob
//! paths are made from parsed CIDs, never from names in the manifest.

use std::path::PathBuf;

use ferry_protocol::filter::Filter;
use ferry_protocol::{ContentId, NetworkId};
use serde::{Deserialize, Serialize};

use crate::blob_store::BlobStore;
use crate::data_dir::DataDir;
use crate::index::Index;
use crate::node::NodeError;

mod export;
mod import;
pub use export::{ExportError, export};
pub use import::{ImportError, Imported, Snapshot};

/// Snapshot format written by this version.
pub const SNAPSHOT_FORMAT: u32 = 1;
/// Name of the manifest file.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the records file.
pub const RECORDS_FILE: &str = "records.cbor";
/// Name of the blob directory.
pub const BLOBS_DIR: &str = "blobs";
/// Largest manifest read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Largest records file read, in bytes: it is read into memory whole.
pub const MAX_RECORDS_FILE_BYTES: u64 = 256 << 20;
/// Most records in one snapshot.
pub const MAX_RECORDS: usize = 1 << 20;
/// Most blobs in one snapshot.
pub const MAX_BLOBS: usize = 1 << 20;

/// What `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Snapshot format ([`SNAPSHOT_FORMAT`]).
    pub format: u32,
    /// The network the records belong to (the id of its genesis record).
    pub network: NetworkId,
    /// The filter the snapshot was exported with.
    pub filter: Filter,
    /// When it was exported, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The records file.
    pub records: RecordsInfo,
    /// Packages whose logs are included.
    pub packages: Vec<String>,
    /// Blobs included under `blobs/`.
    pub blobs: Vec<BlobInfo>,
    /// Blobs of covered releases that are not included, and why.
    #[serde(default)]
    pub missing: Vec<MissingBlob>,
}

/// The records file as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsInfo {
    /// Number of records.
    pub count: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

/// One blob of a covered release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    /// Its id.
    pub cid: ContentId,
    /// Its size in bytes.
    pub size: u64,
    /// The package of the release that names it.
    pub package: String,
    /// The version.
    pub version: String,
    /// `content`, `readme`, `license-text` or `source-archive`.
    pub role: String,
}

/// A covered blob left out of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingBlob {
    /// The blob.
    #[serde(flatten)]
    pub blob: BlobInfo,
    /// Why it is not included.
    pub reason: String,
}

/// Why the storage of a stopped node could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The data directory, index or blob store could not be opened.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The node neither belongs to nor mirrors the network asked for.
    #[error(
        "this node neither belongs to nor mirrors network {0} (see `ferry mirror ls`; a node for it starts with `ferry init --network {0}`)"
    )]
    NotFollowed(NetworkId),
}

/// Opens the index and blob store of a data directory whose node is not running, for
/// export and import without a daemon: the index of `network` (the node's own when
/// `None`), which is the node's own network or one it mirrors. A running node holds its
/// indexes open; then this fails and the caller should go through the node's API.
pub fn open_offline(
    dir: &DataDir,
    network: Option<NetworkId>,
) -> Result<(Index, BlobStore), OfflineError> {
    let own = dir.membership().map_err(NodeError::from)?.network;
    let net = network.unwrap_or(own);
    let path: PathBuf = if net == own {
        dir.path("index.redb")
    } else if crate::mirror::load(dir)
        .unwrap_or_default()
        .iter()
        .any(|m| m.network == net)
    {
        let mdir = DataDir::open(crate::mirror::mirror_dir(dir, &net)).map_err(NodeError::from)?;
        mdir.path("index.redb")
    } else {
        return Err(OfflineError::NotFollowed(net));
    };
    let index = Index::open(&path, net).map_err(|source| NodeError::Index {
        path: path.clone(),
        source,
    })?;
    let blobs = BlobStore::open(dir.path("blobs")).map_err(NodeError::from)?;
    Ok((index, blobs))
}

#[cfg(test)]
mod tests;

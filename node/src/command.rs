//! The handle through which the API (and tests) talk to the event loop.
//!
//! Commands travel on a bounded channel and each carries a oneshot for its reply, so a
//! slow loop pushes back on callers instead of queueing without limit.

use ferry_protocol::component::PackageKind;
use ferry_protocol::filter::Pattern;
use ferry_protocol::log::Rejection;
use ferry_protocol::pin::Pin;
use ferry_protocol::{ContentId, Namespace, PackageName, PublicKey};
use semver::Version;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::blob_store::BlobError;
use crate::index::{IndexError, IngestError, ReleaseEntry};

/// Capacity of the command channel.
pub const COMMAND_QUEUE: usize = 64;

/// A release the API has checked and whose blob is already stored, ready to be signed.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Package.
    pub package: PackageName,
    /// Version.
    pub version: Version,
    /// Component or WIT package.
    pub kind: PackageKind,
    /// Blob id.
    pub content: ContentId,
    /// Blob size.
    pub size: u64,
    /// Chunk digests.
    pub chunks: Vec<u8>,
    /// Description.
    pub description: Option<String>,
    /// License.
    pub license: Option<String>,
    /// Summary computed from the bytes.
    pub summary: ferry_protocol::component::Summary,
    /// Attached files (already stored as blobs) and source reference.
    pub attachments: ferry_protocol::record::Attachments,
    /// Other stored blobs the release needs, to announce as provided (the files of its
    /// assets tree).
    pub extra_blobs: Vec<ContentId>,
}

/// Why a write (publish, namespace definition) failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The protocol refused the record this node would sign.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Another record holds the position (a concurrent write).
    #[error("conflicting write, try again: {0}")]
    Conflict(String),
    /// The statement cannot be appended this way (e.g. a release without its blob).
    #[error("{0}")]
    Unsupported(String),
    /// The package does not exist.
    #[error("package {0} is not known to this node")]
    UnknownPackage(String),
    /// The node has not learned its network's operator log yet.
    #[error(
        "this node has not synced its network's operator log yet: check --bootstrap and try again"
    )]
    NotSynced,
    /// Storage failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

impl From<IngestError> for WriteError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Rejected(r) => WriteError::Rejected(r),
            IngestError::Index(i) => WriteError::Index(i),
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Nobody serves the blob.
    #[error("no peer provides {0} (is a node that holds it online and connected?)")]
    NoProvider(ContentId),
    /// The operator deleted the content.
    #[error("deleted by the network operator: {0}")]
    Deleted(String),
    /// The download failed for good (storage error, or the bytes contradict the release).
    #[error("fetching {0}: {1}")]
    Failed(ContentId, String),
    /// Storage failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Storage failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

/// Why adding or removing a pin failed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// `ferry pin rm` of a pattern that is not pinned.
    #[error("{0} is not pinned (see `ferry pin ls`)")]
    NotPinned(String),
    /// Storage failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

/// Why a garbage collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Storage failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

/// One blob a collection freed (or would free, in a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct FreedBlob {
    /// The blob.
    pub cid: String,
    /// Bytes it took.
    pub bytes: u64,
    /// Whether nothing held it (`unheld`) or the disk budget evicted it from the cache
    /// (`evicted`).
    pub reason: ferry_protocol::retention::Reason,
    /// Whether it was a partial download.
    pub partial: bool,
}

/// What a garbage collection did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Whether nothing was removed (a plan only).
    pub dry_run: bool,
    /// The blobs freed.
    pub freed: Vec<FreedBlob>,
    /// How many were freed.
    pub count: usize,
    /// Bytes freed.
    pub bytes: u64,
    /// Bytes the store holds afterwards.
    pub kept_bytes: u64,
    /// The disk budget, if the node has one.
    pub budget: Option<u64>,
    /// Whether the store is still over the budget (everything left is held).
    pub over_budget: bool,
    /// Blobs the plan would free that were being served at that moment and were kept.
    pub in_use: usize,
    /// Cache entries kept over budget only because they were used moments ago.
    pub spared: usize,
}

/// A connected peer, for status output.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Peer id.
    pub peer_id: String,
    /// Its gossipsub score: negative after it sent records that failed validation.
    pub score: Option<f64>,
}

/// Requests to the event loop.
#[derive(Debug)]
pub enum Command {
    /// Sign and announce a release (creating the package log if needed).
    Publish {
        /// What to release.
        draft: Box<Draft>,
        /// Reply.
        reply: oneshot::Sender<Result<ReleaseEntry, WriteError>>,
    },
    /// Define a namespace (operator only).
    DefineNamespace {
        /// Namespace.
        namespace: Namespace,
        /// Owner keys.
        owners: Vec<PublicKey>,
        /// Reply.
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Sign `body` with the publisher key and append it to `log` (or, for an
    /// attestation, to this key's attester log).
    Append {
        /// The log: `operator`, a package name, or ignored for attestations.
        log: String,
        /// The statement.
        body: Box<ferry_protocol::record::Body>,
        /// Reply with the new record's id.
        reply: oneshot::Sender<Result<ferry_protocol::RecordId, WriteError>>,
    },
    /// Validate, store and announce a record signed elsewhere (an offline key).
    Submit {
        /// The decoded record.
        record: Box<ferry_protocol::SignedRecord>,
        /// Reply: whether it was new.
        reply: oneshot::Sender<Result<bool, WriteError>>,
    },
    /// Make sure the blob of `entry` is stored locally.
    Fetch {
        /// The release whose blob is wanted.
        entry: Box<ReleaseEntry>,
        /// Reply once stored (or failed).
        reply: oneshot::Sender<Result<(), FetchError>>,
    },
    /// Records and blobs arrived outside the network (a snapshot import): act on
    /// what the records mean and provide the blobs.
    Imported {
        /// Effects of the new records, in order.
        effects: Vec<crate::index::Effect>,
        /// Blobs newly stored.
        blobs: Vec<ContentId>,
    },
    /// The files of a checked assets tree of this network's release: named (served
    /// and provided) from now on.
    NameAssets {
        /// The files' blobs.
        files: Vec<ContentId>,
    },
    /// Connected peers.
    Peers {
        /// Reply.
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    /// Add or replace a pin; replies whether it replaced one.
    AddPin {
        /// The pin.
        pin: Box<Pin>,
        /// Reply.
        reply: oneshot::Sender<Result<bool, PinError>>,
    },
    /// Remove the pin named by a pattern.
    RemovePin {
        /// Its pattern.
        pattern: Pattern,
        /// Reply.
        reply: oneshot::Sender<Result<(), PinError>>,
    },
    /// Free every blob nothing holds (and, under a disk budget, old cache entries).
    Gc {
        /// Plan only.
        dry_run: bool,
        /// Reply.
        reply: oneshot::Sender<Result<GcReport, GcError>>,
    },
    /// Drop every cache hold, then collect.
    ClearCache {
        /// Reply.
        reply: oneshot::Sender<Result<GcReport, GcError>>,
    },
}

/// A cloneable handle to the event loop.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
}

impl NodeHandle {
    /// A handle and the receiving end for the loop.
    pub fn channel() -> (Self, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        (Self { tx }, rx)
    }

    /// Publishes a draft.
    pub async fn publish(&self, draft: Draft) -> Result<ReleaseEntry, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Publish {
                draft: Box::new(draft),
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }

    /// Defines a namespace.
    pub async fn define_namespace(
        &self,
        namespace: Namespace,
        owners: Vec<PublicKey>,
    ) -> Result<(), WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::DefineNamespace {
                namespace,
                owners,
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }

    /// Signs and appends a statement.
    pub async fn append(
        &self,
        log: String,
        body: ferry_protocol::record::Body,
    ) -> Result<ferry_protocol::RecordId, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Append {
                log,
                body: Box::new(body),
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }

    /// Validates, stores and announces a record signed elsewhere; `Ok(false)` if it was
    /// already known.
    pub async fn submit(&self, record: ferry_protocol::SignedRecord) -> Result<bool, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Submit {
                record: Box::new(record),
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }

    /// Ensures the blob of `entry` is local.
    pub async fn fetch(&self, entry: ReleaseEntry) -> Result<(), FetchError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Fetch {
                entry: Box::new(entry),
                reply,
            })
            .await
            .map_err(|_| FetchError::Stopped)?;
        rx.await.map_err(|_| FetchError::Stopped)?
    }

    /// Adds or replaces a pin; `Ok(true)` if it replaced one with the same pattern.
    pub async fn add_pin(&self, pin: Pin) -> Result<bool, PinError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::AddPin {
                pin: Box::new(pin),
                reply,
            })
            .await
            .map_err(|_| PinError::Stopped)?;
        rx.await.map_err(|_| PinError::Stopped)?
    }

    /// Removes the pin named `pattern`.
    pub async fn remove_pin(&self, pattern: Pattern) -> Result<(), PinError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::RemovePin { pattern, reply })
            .await
            .map_err(|_| PinError::Stopped)?;
        rx.await.map_err(|_| PinError::Stopped)?
    }

    /// Collects garbage now (or only plans it, with `dry_run`).
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport, GcError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Gc { dry_run, reply })
            .await
            .map_err(|_| GcError::Stopped)?;
        rx.await.map_err(|_| GcError::Stopped)?
    }

    /// Drops every cache hold and collects.
    pub async fn clear_cache(&self) -> Result<GcReport, GcError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::ClearCache { reply })
            .await
            .map_err(|_| GcError::Stopped)?;
        rx.await.map_err(|_| GcError::Stopped)?
    }

    /// Tells the loop about records and blobs stored by a snapshot import.
    pub async fn imported(&self, effects: Vec<crate::index::Effect>, blobs: Vec<ContentId>) {
        // If the loop has stopped there is nobody left to tell.
        let _ = self.tx.send(Command::Imported { effects, blobs }).await;
    }

    /// Tells the loop that the files of a checked assets tree may be served.
    pub async fn name_assets(&self, files: Vec<ContentId>) {
        let _ = self.tx.send(Command::NameAssets { files }).await;
    }

    /// Connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

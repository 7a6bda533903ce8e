//! Messages of the request-response protocols between nodes.
//!
//! Every response is bounded by the constants here so that a peer can never make us
//! buffer more than a few MiB per request.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::content_id::{ContentId, RecordId};
use crate::record::NetworkId;

/// Most log heads in one response.
pub const MAX_HEADS: u32 = 1024;
/// Most records in one response.
pub const MAX_RECORDS: u32 = 128;

/// The head of one log, as a peer reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHead {
    /// Log name: `operator` or a package name.
    pub log: String,
    /// Sequence number of its newest record.
    pub seq: u64,
    /// Id of its newest record.
    pub id: RecordId,
    /// When the log is forked at `seq + 1`: the conflicting records, so that peers who
    /// hold only one of them learn of the equivocation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fork: Vec<RecordId>,
}

/// A request of the `sync` protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Log heads, in log-name order, after `after` (exclusive).
    Heads {
        /// Network asked about.
        network: NetworkId,
        /// Paging cursor: the last log name of the previous page.
        after: Option<String>,
        /// Most heads wanted (capped at [`MAX_HEADS`]).
        limit: u32,
    },
    /// Records of one log from `from_seq` on, in order.
    Records {
        /// Network asked about.
        network: NetworkId,
        /// Log name.
        log: String,
        /// First seq wanted.
        from_seq: u64,
        /// Most records wanted (capped at [`MAX_RECORDS`]).
        limit: u32,
    },
    /// Records by id, including conflicting ones kept as evidence.
    ById {
        /// Network asked about.
        network: NetworkId,
        /// The ids (at most [`MAX_BY_ID`]).
        ids: Vec<RecordId>,
    },
}

/// Most records asked for by id in one request.
pub const MAX_BY_ID: usize = 64;

/// A response of the `sync` protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// A page of heads.
    Heads {
        /// The heads.
        heads: Vec<LogHead>,
        /// Whether more pages follow.
        more: bool,
    },
    /// Envelope bytes of consecutive records.
    Records(Vec<ByteBuf>),
    /// The request was refused (unknown network, ...).
    Refused(String),
}

/// A request of the `blob` protocol: one chunk of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRequest {
    /// The blob.
    pub content: ContentId,
    /// Chunk index.
    pub index: u64,
}

/// A response of the `blob` protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The chunk's bytes.
    Chunk(ByteBuf),
    /// This peer does not hold that blob (complete and verified).
    NotFound,
}

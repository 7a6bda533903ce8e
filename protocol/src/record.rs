//! Records: the signed statements that make up logs.
//!
//! A record's payload is CBOR of [`Record`]. Names and versions travel as text and are
//! parsed during validation, so that a malformed name is a typed rejection
//! ([`crate::log::Rejection::MalformedName`]) rather than an opaque decode failure.
//! Serde ignores unknown fields, so a newer node may add fields without breaking older
//! nodes: they still verify the signature over the exact payload bytes they received.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::component::PackageKind;
use crate::content_id::{ContentId, RecordId};
use crate::key::PublicKey;

/// Payload format written by this version.
pub const RECORD_FORMAT: u32 = 1;

/// The log id of a network's operator log. Package logs are named by their package
/// name, which always contains a `:`, so the two never collide.
pub const OPERATOR_LOG: &str = "operator";

/// The id of a network: the record id of its genesis (`operator-init`) record.
pub type NetworkId = RecordId;

/// One entry of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Payload format version.
    pub format: u32,
    /// The network this record belongs to; `None` only in the genesis record, whose
    /// own id becomes the network id.
    pub network: Option<NetworkId>,
    /// The log: [`OPERATOR_LOG`] or a package name.
    pub log: String,
    /// Position in the log, from 0.
    pub seq: u64,
    /// Id of the record at `seq - 1`; `None` at `seq` 0.
    pub prev: Option<RecordId>,
    /// Milliseconds since the Unix epoch, as claimed by the signer.
    pub time_ms: u64,
    /// What the record says.
    pub body: Body,
}

/// The statement a record makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Body {
    /// Genesis of a network: its operator keys.
    OperatorInit {
        /// Keys allowed to append to the operator log.
        operators: Vec<PublicKey>,
        /// Random bytes chosen by the creator so that two networks with the same
        /// operator key still get different ids.
        nonce: ByteBuf,
    },
    /// Assigns a namespace to owner keys.
    DefineNamespace {
        /// The namespace, e.g. `acme`.
        namespace: String,
        /// Keys that own it: they may create packages and release in it.
        owners: Vec<PublicKey>,
    },
    /// Creates a package log. Signed by an owner of its namespace.
    PackageInit {
        /// Component or WIT package.
        kind: PackageKind,
    },
    /// Publishes a version.
    Release(Release),
}

impl Body {
    /// A short name for messages and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::OperatorInit { .. } => "operator-init",
            Body::DefineNamespace { .. } => "define-namespace",
            Body::PackageInit { .. } => "package-init",
            Body::Release(_) => "release",
        }
    }
}

/// A released version of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Semver version, as text.
    pub version: String,
    /// Component or WIT package.
    pub kind: PackageKind,
    /// The blob's id.
    pub content: ContentId,
    /// The blob's size in bytes.
    pub size: u64,
    /// Chunk size used for `chunks`.
    pub chunk_size: u32,
    /// SHA-256 of every chunk, concatenated.
    pub chunks: ByteBuf,
    /// One-line description for search.
    pub description: Option<String>,
    /// SPDX license expression, as given by the publisher.
    pub license: Option<String>,
}

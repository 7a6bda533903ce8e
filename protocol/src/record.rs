//! Records: the signed statements that make up logs.
//!
//! A record's payload is CBOR of [`Record`]. Names and versions travel as text and are
//! parsed during validation, so that a malformed name is a typed rejection
//! ([`crate::log::Rejection::MalformedName`]) rather than an opaque decode failure.
//! Serde ignores unknown fields, so a newer node may add fields without breaking older
//! nodes: they still verify the signature over the exact payload bytes they received.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::component::{PackageKind, Summary};
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

/// A permission a package owner can grant to another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Perm {
    /// May publish releases.
    Release,
    /// May yank and unyank releases.
    Yank,
}

impl std::fmt::Display for Perm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Perm::Release => "release",
            Perm::Yank => "yank",
        })
    }
}

/// What an operator tombstone removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Every version of a package.
    Package {
        /// The package.
        package: String,
    },
    /// One version.
    Version {
        /// The package.
        package: String,
        /// The version.
        version: String,
    },
    /// Every release of some content, wherever it was published.
    Content {
        /// The blob.
        content: ContentId,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Package { package } => write!(f, "{package}"),
            Target::Version { package, version } => write!(f, "{package}@{version}"),
            Target::Content { content } => write!(f, "{content}"),
        }
    }
}

/// The statement a record makes.
// Releases (with their summary) are much larger than other statements; records are
// handled one at a time and never stored in bulk as `Body`, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Adds an operator key (operator log).
    GrantOperator {
        /// The key.
        key: PublicKey,
    },
    /// Removes an operator key (operator log). The last operator cannot be removed.
    RevokeOperator {
        /// The key.
        key: PublicKey,
    },
    /// Adds an owner to a namespace (operator log).
    GrantNamespace {
        /// The namespace.
        namespace: String,
        /// The key.
        key: PublicKey,
    },
    /// Removes an owner from a namespace (operator log).
    RevokeNamespace {
        /// The namespace.
        namespace: String,
        /// The key.
        key: PublicKey,
    },
    /// Network policy (operator log).
    SetPolicy {
        /// Releases must carry a valid SPDX license expression.
        require_spdx: bool,
    },
    /// Operator deletion of content that violates the network's rules (operator log).
    Delete {
        /// What is deleted.
        target: Target,
        /// Why, shown to everyone who asks for it.
        reason: String,
    },
    /// Creates a package log. Signed by an owner of its namespace.
    PackageInit {
        /// Component or WIT package.
        kind: PackageKind,
    },
    /// Publishes a version.
    Release(Release),
    /// Gives a key permissions on this package (signed by a namespace owner).
    Grant {
        /// The key.
        key: PublicKey,
        /// What it may do.
        perms: Vec<Perm>,
    },
    /// Takes all permissions on this package from a key (signed by a namespace owner).
    Revoke {
        /// The key.
        key: PublicKey,
    },
    /// Marks a version as not to be picked by version resolution.
    Yank {
        /// The version.
        version: String,
        /// Why.
        reason: Option<String>,
    },
    /// Reverses a yank.
    Unyank {
        /// The version.
        version: String,
    },
    /// Ends a fork: keeps one of the conflicting records at `seq - 1`, which must be
    /// this record's `prev` (signed by a namespace owner).
    ResolveFork {
        /// The record kept.
        keep: RecordId,
    },
    /// A statement by any key about a release (attester logs).
    Attest(Attestation),
}

impl Body {
    /// A short name for messages and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::OperatorInit { .. } => "operator-init",
            Body::DefineNamespace { .. } => "define-namespace",
            Body::GrantOperator { .. } => "grant-operator",
            Body::RevokeOperator { .. } => "revoke-operator",
            Body::GrantNamespace { .. } => "grant-namespace",
            Body::RevokeNamespace { .. } => "revoke-namespace",
            Body::SetPolicy { .. } => "set-policy",
            Body::Delete { .. } => "delete",
            Body::PackageInit { .. } => "package-init",
            Body::Release(_) => "release",
            Body::Grant { .. } => "grant",
            Body::Revoke { .. } => "revoke",
            Body::Yank { .. } => "yank",
            Body::Unyank { .. } => "unyank",
            Body::ResolveFork { .. } => "resolve-fork",
            Body::Attest(_) => "attest",
        }
    }
}

/// A signed statement about a release by any key: a review, a build attestation, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The package.
    pub package: String,
    /// The version.
    pub version: String,
    /// The release record attested.
    pub release: RecordId,
    /// What the attester claims, e.g. "reviewed", "built from source at <rev>".
    pub claim: String,
    /// Optional JSON document with details.
    pub data: Option<String>,
}

/// Prefix of attester log names: `~attest/<key hex>`. `~` and `/` never occur in
/// package names, so these logs cannot collide with packages or the operator log.
pub const ATTEST_LOG_PREFIX: &str = "~attest/";

/// The log name of `key`'s attestations.
pub fn attest_log(key: &PublicKey) -> String {
    format!("{ATTEST_LOG_PREFIX}{}", hex::encode(key.as_bytes()))
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
    /// What the content imports, exports and needs, computed from its bytes at publish;
    /// nodes that download the bytes recompute it and refuse the release if it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Files published beside the content (README, license text, source archive) and
    /// where its source lives.
    #[serde(default, skip_serializing_if = "Attachments::is_empty")]
    pub attachments: Attachments,
}

/// Files published with a release, each a blob of its own, and its source reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachments {
    /// A README (Markdown or text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readme: Option<Attachment>,
    /// The full license text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_text: Option<Attachment>,
    /// An archive of the source, for licenses that require offering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_archive: Option<Attachment>,
    /// Where the source lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// A directory tree of static files ([`crate::assets`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<AssetsRef>,
}

impl Attachments {
    /// Whether nothing is attached.
    pub fn is_empty(&self) -> bool {
        *self == Attachments::default()
    }

    /// The attached blobs, with a name for each (the assets tree is `assets`; the
    /// files it lists are not attachments of their own).
    pub fn blobs(&self) -> impl Iterator<Item = (&'static str, &Attachment)> {
        [
            ("readme", self.readme.as_ref()),
            ("license-text", self.license_text.as_ref()),
            ("source-archive", self.source_archive.as_ref()),
            ("assets", self.assets.as_ref().map(|a| &a.tree)),
        ]
        .into_iter()
        .filter_map(|(n, a)| a.map(|a| (n, a)))
    }
}

/// One attached blob: enough to download and verify it like the content itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The blob's id.
    pub content: ContentId,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of every chunk ([`crate::chunk::CHUNK_SIZE`]), concatenated.
    pub chunks: ByteBuf,
}

/// The assets tree of a release: the tree blob, and the file count and total size it
/// holds, so that `info` can show them without fetching the tree. A node that fetches
/// the tree checks both numbers against it ([`crate::assets::AssetTree::check_against`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetsRef {
    /// The CBOR tree ([`crate::assets::AssetTree`]).
    pub tree: Attachment,
    /// Number of files in the tree.
    pub files: u64,
    /// Total size of those files.
    pub bytes: u64,
}

/// Where a release's source lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Repository URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Revision (commit, tag) the content was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

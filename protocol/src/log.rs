//! Log validation: `(state, record) -> new state | typed rejection`.
//!
//! Every node runs the same pure functions on the same signed records, so honest nodes
//! agree on what is authentic without trusting each other. A rejection names the rule
//! that refused the record. Two kinds of rejection are not faults of the sender:
//! [`Rejection::Gap`] (we are behind: sync first) and [`Rejection::Stale`] (we already
//! have that position: a duplicate, or an equivocation the caller must compare).

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::component::PackageKind;
use crate::content_id::{ContentId, RecordId};
use crate::envelope::SignedRecord;
use crate::key::PublicKey;
use crate::name::{NameError, Namespace, PackageName};
use crate::record::{NetworkId, Perm, RECORD_FORMAT, Target};

/// How far in the future a record's timestamp may be, in milliseconds (10 minutes):
/// clocks drift, but a record stamped further ahead is refused.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// Longest license expression, in bytes.
pub const MAX_LICENSE_BYTES: usize = 256;
/// Most keys named in one record.
pub const MAX_KEYS: usize = 64;
/// Largest blob a release may name (1 GiB).
pub const MAX_BLOB_BYTES: u64 = 1 << 30;

/// The position of a log's newest record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its sequence number.
    pub seq: u64,
    /// Its id.
    pub id: RecordId,
}

/// Two or more validly signed records claim the same position of a log: an
/// equivocation by their signer(s). The log's view stops before that position until an
/// owner resolves it; the conflicting records are kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The contested position.
    pub seq: u64,
    /// The conflicting records, sorted.
    pub candidates: Vec<RecordId>,
}

/// Network-wide rules set by the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Releases must carry a valid SPDX license expression.
    pub require_spdx: bool,
}

/// An operator deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// What was deleted.
    pub target: Target,
    /// Why.
    pub reason: String,
    /// The `delete` record.
    pub record: RecordId,
}

/// What the operator log says so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorState {
    /// The network (the genesis record's id).
    pub network: NetworkId,
    /// Newest record.
    pub head: Head,
    /// Keys that may append to the operator log, with the record that granted each.
    pub operators: BTreeMap<PublicKey, RecordId>,
    /// Defined namespaces: owner keys, with the record that granted each.
    pub namespaces: BTreeMap<Namespace, BTreeMap<PublicKey, RecordId>>,
    /// Keys whose operator or namespace rights were revoked (for messages).
    pub revoked: BTreeSet<PublicKey>,
    /// Network policy.
    pub policy: Policy,
    /// Deletions.
    pub tombstones: Vec<Tombstone>,
    /// Set when the operator equivocated; the log accepts nothing more.
    pub forked: Option<Fork>,
}

impl OperatorState {
    /// The tombstone that deletes `package@version` with `content`, if any.
    pub fn deletion(
        &self,
        package: &str,
        version: Option<&str>,
        content: Option<&ContentId>,
    ) -> Option<&Tombstone> {
        self.tombstones.iter().find(|t| match &t.target {
            Target::Package { package: p } => p == package,
            Target::Version {
                package: p,
                version: v,
            } => p == package && Some(v.as_str()) == version,
            Target::Content { content: c } => Some(c) == content,
        })
    }
}

/// A yank of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Yanked {
    /// Why.
    pub reason: Option<String>,
    /// The `yank` record.
    pub record: RecordId,
}

/// One version in a package's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionState {
    /// The released blob.
    pub content: ContentId,
    /// The release record.
    pub record: RecordId,
    /// Who signed the release.
    pub signer: PublicKey,
    /// The record that gave the signer its right to release.
    pub authority: RecordId,
    /// Set while yanked.
    pub yanked: Option<Yanked>,
}

/// Permissions granted to one key in a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantState {
    /// What it may do.
    pub perms: BTreeSet<Perm>,
    /// The `grant` record.
    pub record: RecordId,
}

/// What a package log says so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageState {
    /// The package.
    pub package: PackageName,
    /// Component or WIT package, fixed at init.
    pub kind: PackageKind,
    /// Newest record.
    pub head: Head,
    /// Released versions.
    pub versions: BTreeMap<Version, VersionState>,
    /// Keys granted permissions beyond the namespace owners.
    pub grants: BTreeMap<PublicKey, GrantState>,
    /// Keys whose grants were revoked (for messages).
    pub revoked: BTreeSet<PublicKey>,
    /// Set while the log is forked.
    pub forked: Option<Fork>,
}

/// What an attester's log says so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttesterState {
    /// The attesting key.
    pub key: PublicKey,
    /// Newest record.
    pub head: Head,
}

/// Why a record was refused. Each variant is one rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The signature does not verify.
    #[error("bad signature (claimed signer {0})")]
    BadSignature(PublicKey),
    /// Bytes are not a record.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// Envelope over the size limit.
    #[error("record is {size} bytes, over the {max}-byte limit")]
    Oversized {
        /// Size received.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Payload format newer than this node understands.
    #[error("record format {0} is newer than this node supports ({RECORD_FORMAT}): upgrade ferry")]
    UnsupportedFormat(u32),
    /// Record of another network.
    #[error("record belongs to network {got:?}, not {expected}")]
    WrongNetwork {
        /// Ours.
        expected: NetworkId,
        /// Its.
        got: Option<NetworkId>,
    },
    /// Genesis whose id is not the network id.
    #[error("record {0} is not the genesis of this network")]
    NotGenesis(RecordId),
    /// Signer is no operator (operator log) or unknown.
    #[error("signer {0} is not an operator of this network")]
    UnknownSigner(PublicKey),
    /// Signer does not own the namespace, and no grant covers what it signed.
    #[error("key {key} may not {action} in namespace `{namespace}`: {why}")]
    NotAllowedInNamespace {
        /// Signer.
        key: PublicKey,
        /// Namespace.
        namespace: Namespace,
        /// What it tried, e.g. "publish releases".
        action: &'static str,
        /// Why not, e.g. that only owners may.
        why: &'static str,
    },
    /// Namespace never defined by the operator.
    #[error(
        "namespace `{0}` is not defined in this network: ask the operator to run `ferry namespace define {0}`"
    )]
    NamespaceNotDefined(Namespace),
    /// Namespace defined twice.
    #[error("namespace `{0}` is already defined")]
    NamespaceExists(Namespace),
    /// A name or namespace breaks the grammar.
    #[error("{0}")]
    MalformedName(#[from] NameError),
    /// A version is not semver.
    #[error("`{0}` is not a semver version (expected e.g. 1.2.3)")]
    MalformedVersion(String),
    /// `prev` is not the id of the record at `seq - 1`.
    #[error("record at seq {seq} of `{log}` names prev {got:?}, expected {expected:?}")]
    WrongPrev {
        /// Log.
        log: String,
        /// Its seq.
        seq: u64,
        /// What it should name.
        expected: Option<RecordId>,
        /// What it names.
        got: Option<RecordId>,
    },
    /// `seq` is past the next free position: records are missing in between.
    #[error("record at seq {got} of `{log}` is ahead of the log (next is {expected}): sync first")]
    Gap {
        /// Log.
        log: String,
        /// Next free seq.
        expected: u64,
        /// Its seq.
        got: u64,
    },
    /// `seq` is already taken: a replay, or a conflicting record (equivocation).
    #[error("seq {seq} of `{log}` is already taken")]
    Stale {
        /// Log.
        log: String,
        /// Its seq.
        seq: u64,
    },
    /// The version exists.
    #[error("{package}@{version} is already released; versions are immutable, publish a new one")]
    VersionExists {
        /// Package.
        package: PackageName,
        /// Version.
        version: Version,
    },
    /// The body does not belong at this place (e.g. a release in the operator log, or a
    /// package log that does not start with `package-init`).
    #[error("a `{body}` record cannot appear at seq {seq} of `{log}`")]
    Misplaced {
        /// Body kind.
        body: &'static str,
        /// Log.
        log: String,
        /// Its seq.
        seq: u64,
    },
    /// Release fields are inconsistent or over limits.
    #[error("invalid release: {0}")]
    BadRelease(String),
    /// Too many keys, too long a description, etc.
    #[error("record field over its limit: {0}")]
    OverLimit(String),
    /// A revoked key signed after its revocation.
    #[error("key {key} was revoked in `{log}`")]
    RevokedKey {
        /// The key.
        key: PublicKey,
        /// Where.
        log: String,
    },
    /// The key holds grants in the package, but not this one.
    #[error("key {key} lacks the `{perm}` permission on {package}")]
    MissingPermission {
        /// The key.
        key: PublicKey,
        /// Missing permission.
        perm: Perm,
        /// The package.
        package: PackageName,
    },
    /// The network requires an SPDX license and the release has none.
    #[error(
        "{release} has no license, and this network requires a valid SPDX expression (publish with --license, e.g. --license Apache-2.0)"
    )]
    LicenseRequired {
        /// `package@version`.
        release: String,
    },
    /// The license is not a valid SPDX expression.
    #[error("{release}: license `{license}` is not a valid SPDX expression: {why}")]
    InvalidLicense {
        /// `package@version`.
        release: String,
        /// The license text.
        license: String,
        /// The parser's complaint.
        why: String,
    },
    /// The log is forked: nothing but a resolution is accepted.
    #[error(
        "`{log}` is forked at seq {seq} (conflicting signed records): an owner must resolve it first"
    )]
    Forked {
        /// Log.
        log: String,
        /// Contested position.
        seq: u64,
    },
    /// A yank of an unknown version, a double yank, an unyank of a live version.
    #[error("{0}")]
    BadYank(String),
    /// A grant or revoke that makes no sense (revoking the last operator, an empty grant).
    #[error("{0}")]
    BadGrant(String),
    /// An attestation about a release this node does not know.
    #[error("attestation names release {0}, unknown here")]
    UnknownRelease(RecordId),
    /// Stamped too far ahead of the validating node's clock.
    #[error("record is stamped {ahead_ms} ms in the future (limit {MAX_CLOCK_SKEW_MS} ms)")]
    FutureTimestamp {
        /// How far ahead.
        ahead_ms: u64,
    },
}

impl From<crate::envelope::EnvelopeError> for Rejection {
    fn from(e: crate::envelope::EnvelopeError) -> Self {
        use crate::envelope::EnvelopeError as E;
        match e {
            E::Oversized { size } => Rejection::Oversized {
                size,
                max: crate::envelope::MAX_RECORD_BYTES,
            },
            E::Malformed(m) => Rejection::Malformed(m),
            E::BadSignature { signer, .. } => Rejection::BadSignature(signer),
        }
    }
}

impl Rejection {
    /// Whether the record proves nothing bad about its sender: it is either a
    /// duplicate/conflict the caller compares against its own copy, or ahead of us.
    pub fn is_benign(&self) -> bool {
        matches!(
            self,
            Rejection::Gap { .. }
                | Rejection::Stale { .. }
                | Rejection::NamespaceNotDefined(_)
                | Rejection::UnknownRelease(_)
                // A validly signed record that does not follow our head is evidence of
                // a fork somewhere, not a fault of whoever relayed it.
                | Rejection::WrongPrev { .. }
                | Rejection::Forked { .. }
        )
    }
}

pub(crate) fn check_common(
    rec: &SignedRecord,
    network: Option<&NetworkId>,
    head: Option<&Head>,
    now_ms: u64,
) -> Result<(), Rejection> {
    let r = &rec.record;
    if r.format > RECORD_FORMAT {
        return Err(Rejection::UnsupportedFormat(r.format));
    }
    if let Some(net) = network
        && r.network.as_ref() != Some(net)
    {
        return Err(Rejection::WrongNetwork {
            expected: *net,
            got: r.network,
        });
    }
    let next = head.map_or(0, |h| h.seq + 1);
    if r.seq < next {
        return Err(Rejection::Stale {
            log: r.log.clone(),
            seq: r.seq,
        });
    }
    if r.seq > next {
        return Err(Rejection::Gap {
            log: r.log.clone(),
            expected: next,
            got: r.seq,
        });
    }
    let expected_prev = head.map(|h| h.id);
    if r.prev != expected_prev {
        return Err(Rejection::WrongPrev {
            log: r.log.clone(),
            seq: r.seq,
            expected: expected_prev,
            got: r.prev,
        });
    }
    if r.time_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(Rejection::FutureTimestamp {
            ahead_ms: r.time_ms - now_ms,
        });
    }
    Ok(())
}

/// A non-empty, bounded key list as a set.
pub(crate) fn check_keys(keys: &[PublicKey]) -> Result<BTreeSet<PublicKey>, Rejection> {
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(Rejection::OverLimit(format!(
            "{} keys named; between 1 and {MAX_KEYS} are allowed",
            keys.len()
        )));
    }
    Ok(keys.iter().copied().collect())
}

mod attest;
mod operator;
mod package;

pub use attest::apply_attest;
pub use operator::apply_operator;
pub use package::{apply_package, authority, check_release, forked, resolve_fork};

#[cfg(test)]
mod tests;

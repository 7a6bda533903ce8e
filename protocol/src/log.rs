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

use crate::chunk;
use crate::component::PackageKind;
use crate::content_id::{ContentId, RecordId};
use crate::envelope::SignedRecord;
use crate::key::PublicKey;
use crate::name::{NameError, Namespace, PackageName};
use crate::record::{Body, NetworkId, OPERATOR_LOG, RECORD_FORMAT, Release};

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

/// What the operator log says so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorState {
    /// The network (the genesis record's id).
    pub network: NetworkId,
    /// Newest record.
    pub head: Head,
    /// Keys that may append to the operator log.
    pub operators: BTreeSet<PublicKey>,
    /// Defined namespaces and their owners.
    pub namespaces: BTreeMap<Namespace, BTreeSet<PublicKey>>,
}

/// One version in a package's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionState {
    /// The released blob.
    pub content: ContentId,
    /// The release record.
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
    /// Signer does not own the namespace.
    #[error("signer {key} may not publish in namespace `{namespace}`")]
    NotAllowedInNamespace {
        /// Signer.
        key: PublicKey,
        /// Namespace.
        namespace: Namespace,
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
            Rejection::Gap { .. } | Rejection::Stale { .. } | Rejection::NamespaceNotDefined(_)
        )
    }
}

fn check_common(
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

fn check_keys(keys: &[PublicKey]) -> Result<BTreeSet<PublicKey>, Rejection> {
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(Rejection::OverLimit(format!(
            "{} keys named; between 1 and {MAX_KEYS} are allowed",
            keys.len()
        )));
    }
    Ok(keys.iter().copied().collect())
}

/// Applies a record to the operator log of `network`. `state` is `None` before genesis.
pub fn apply_operator(
    network: &NetworkId,
    state: Option<&OperatorState>,
    rec: &SignedRecord,
    now_ms: u64,
) -> Result<OperatorState, Rejection> {
    let r = &rec.record;
    if r.log != OPERATOR_LOG {
        return Err(Rejection::Misplaced {
            body: r.body.kind(),
            log: r.log.clone(),
            seq: r.seq,
        });
    }
    let Some(state) = state else {
        // Genesis: no network field (its own id is the network), seq 0, self-authorizing.
        check_common(rec, None, None, now_ms)?;
        let Body::OperatorInit { operators, .. } = &r.body else {
            return Err(Rejection::Misplaced {
                body: r.body.kind(),
                log: r.log.clone(),
                seq: r.seq,
            });
        };
        if rec.id != *network || r.network.is_some() {
            return Err(Rejection::NotGenesis(rec.id));
        }
        let operators = check_keys(operators)?;
        if !operators.contains(&rec.signer) {
            return Err(Rejection::UnknownSigner(rec.signer));
        }
        return Ok(OperatorState {
            network: *network,
            head: Head { seq: 0, id: rec.id },
            operators,
            namespaces: BTreeMap::new(),
        });
    };
    check_common(rec, Some(network), Some(&state.head), now_ms)?;
    if !state.operators.contains(&rec.signer) {
        return Err(Rejection::UnknownSigner(rec.signer));
    }
    let mut next = state.clone();
    next.head = Head {
        seq: r.seq,
        id: rec.id,
    };
    match &r.body {
        Body::DefineNamespace { namespace, owners } => {
            let ns: Namespace = namespace.parse()?;
            if next.namespaces.contains_key(&ns) {
                return Err(Rejection::NamespaceExists(ns));
            }
            let owners = check_keys(owners)?;
            next.namespaces.insert(ns, owners);
        }
        other => {
            return Err(Rejection::Misplaced {
                body: other.kind(),
                log: r.log.clone(),
                seq: r.seq,
            });
        }
    }
    Ok(next)
}

/// Checks a release's own fields.
pub fn check_release(rel: &Release) -> Result<Version, Rejection> {
    let version = Version::parse(&rel.version)
        .map_err(|_| Rejection::MalformedVersion(rel.version.clone()))?;
    if rel.size > MAX_BLOB_BYTES {
        return Err(Rejection::BadRelease(format!(
            "size {} is over the {MAX_BLOB_BYTES}-byte limit",
            rel.size
        )));
    }
    if rel.chunk_size != chunk::CHUNK_SIZE {
        return Err(Rejection::BadRelease(format!(
            "chunk size {} is not {}",
            rel.chunk_size,
            chunk::CHUNK_SIZE
        )));
    }
    let want = chunk::count(rel.size, rel.chunk_size).saturating_mul(32);
    if rel.chunks.len() as u64 != want {
        return Err(Rejection::BadRelease(format!(
            "{} bytes of chunk digests for {} bytes of content, expected {want}",
            rel.chunks.len(),
            rel.size
        )));
    }
    if rel.size <= u64::from(rel.chunk_size)
        && rel.size > 0
        && chunk::digest_at(&rel.chunks, 0) != Some(*rel.content.digest())
    {
        // A single-chunk blob's chunk digest is its content digest; a mismatch means
        // the release contradicts itself and no download could ever satisfy both.
        return Err(Rejection::BadRelease(
            "chunk digest differs from the content id".into(),
        ));
    }
    if rel
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES)
    {
        return Err(Rejection::OverLimit(format!(
            "description longer than {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    if rel
        .license
        .as_ref()
        .is_some_and(|l| l.len() > MAX_LICENSE_BYTES)
    {
        return Err(Rejection::OverLimit(format!(
            "license longer than {MAX_LICENSE_BYTES} bytes"
        )));
    }
    Ok(version)
}

/// Applies a record to a package log. `state` is `None` before the log's first record.
pub fn apply_package(
    operator: &OperatorState,
    state: Option<&PackageState>,
    rec: &SignedRecord,
    now_ms: u64,
) -> Result<PackageState, Rejection> {
    let r = &rec.record;
    let package: PackageName = r.log.parse()?;
    check_common(rec, Some(&operator.network), state.map(|s| &s.head), now_ms)?;
    let ns = package.namespace();
    let owners = operator
        .namespaces
        .get(ns)
        .ok_or_else(|| Rejection::NamespaceNotDefined(ns.clone()))?;
    if !owners.contains(&rec.signer) {
        return Err(Rejection::NotAllowedInNamespace {
            key: rec.signer,
            namespace: ns.clone(),
        });
    }
    let head = Head {
        seq: r.seq,
        id: rec.id,
    };
    match (&r.body, state) {
        (Body::PackageInit { kind }, None) => Ok(PackageState {
            package,
            kind: *kind,
            head,
            versions: BTreeMap::new(),
        }),
        (Body::Release(rel), Some(state)) => {
            let version = check_release(rel)?;
            if state.versions.contains_key(&version) {
                return Err(Rejection::VersionExists { package, version });
            }
            if rel.kind != state.kind {
                return Err(Rejection::BadRelease(format!(
                    "{package} is a {:?} package; this release is a {:?}",
                    state.kind, rel.kind
                )));
            }
            let mut next = state.clone();
            next.head = head;
            next.versions.insert(
                version,
                VersionState {
                    content: rel.content,
                    record: rec.id,
                },
            );
            Ok(next)
        }
        (body, _) => Err(Rejection::Misplaced {
            body: body.kind(),
            log: r.log.clone(),
            seq: r.seq,
        }),
    }
}

#[cfg(test)]
mod tests;

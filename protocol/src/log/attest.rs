//! Validation of attester logs: any key may make signed statements about releases, in a
//! log of its own (`~attest/<key>`), so attestations never contend with package logs.

use super::{AttesterState, Head, Rejection, check_common};
use crate::envelope::SignedRecord;
use crate::record::{ATTEST_LOG_PREFIX, Body, NetworkId, attest_log};

/// Longest claim, in bytes.
pub const MAX_CLAIM_BYTES: usize = 1024;
/// Longest attached JSON document, in bytes.
pub const MAX_ATTEST_DATA_BYTES: usize = 32 * 1024;

/// Applies an attestation. `release_known` says whether the attested release record is
/// in the validating node's index; if not, the record is refused as benign
/// ([`Rejection::UnknownRelease`]) and retried after the next sync.
pub fn apply_attest(
    network: &NetworkId,
    state: Option<&AttesterState>,
    rec: &SignedRecord,
    release_known: bool,
    now_ms: u64,
) -> Result<AttesterState, Rejection> {
    let r = &rec.record;
    check_common(rec, Some(network), state.map(|s| &s.head), now_ms)?;
    let Body::Attest(a) = &r.body else {
        return Err(Rejection::Misplaced {
            body: r.body.kind(),
            log: r.log.clone(),
            seq: r.seq,
        });
    };
    // Only the key named by the log may write to it.
    if !r.log.starts_with(ATTEST_LOG_PREFIX) || r.log != attest_log(&rec.signer) {
        return Err(Rejection::UnknownSigner(rec.signer));
    }
    a.package.parse::<crate::PackageName>()?;
    semver::Version::parse(&a.version)
        .map_err(|_| Rejection::MalformedVersion(a.version.clone()))?;
    if a.claim.trim().is_empty() || a.claim.len() > MAX_CLAIM_BYTES {
        return Err(Rejection::OverLimit(format!(
            "a claim needs 1 to {MAX_CLAIM_BYTES} bytes"
        )));
    }
    if a.data
        .as_ref()
        .is_some_and(|d| d.len() > MAX_ATTEST_DATA_BYTES)
    {
        return Err(Rejection::OverLimit(format!(
            "attestation data longer than {MAX_ATTEST_DATA_BYTES} bytes"
        )));
    }
    if !release_known {
        return Err(Rejection::UnknownRelease(a.release));
    }
    Ok(AttesterState {
        key: rec.signer,
        head: Head {
            seq: r.seq,
            id: rec.id,
        },
    })
}

//! Validation of the operator log: genesis, namespaces, operator keys, policy, deletions.

use std::collections::BTreeMap;

use super::{Head, OperatorState, Policy, Rejection, Tombstone, check_common, check_keys};
use crate::envelope::SignedRecord;
use crate::name::{Namespace, PackageName};
use crate::record::{Body, NetworkId, OPERATOR_LOG, Target};

/// Longest deletion reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

fn misplaced(rec: &SignedRecord) -> Rejection {
    Rejection::Misplaced {
        body: rec.record.body.kind(),
        log: rec.record.log.clone(),
        seq: rec.record.seq,
    }
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
        return Err(misplaced(rec));
    }
    let Some(state) = state else {
        // Genesis: no network field (its own id is the network), seq 0, self-authorizing.
        check_common(rec, None, None, now_ms)?;
        let Body::OperatorInit { operators, .. } = &r.body else {
            return Err(misplaced(rec));
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
            operators: operators.into_iter().map(|k| (k, rec.id)).collect(),
            namespaces: BTreeMap::new(),
            revoked: Default::default(),
            policy: Policy::default(),
            tombstones: Vec::new(),
            forked: None,
        });
    };
    check_common(rec, Some(network), Some(&state.head), now_ms)?;
    if let Some(f) = &state.forked {
        return Err(Rejection::Forked {
            log: OPERATOR_LOG.into(),
            seq: f.seq,
        });
    }
    if !state.operators.contains_key(&rec.signer) {
        return Err(if state.revoked.contains(&rec.signer) {
            Rejection::RevokedKey {
                key: rec.signer,
                log: OPERATOR_LOG.into(),
            }
        } else {
            Rejection::UnknownSigner(rec.signer)
        });
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
            next.namespaces
                .insert(ns, owners.into_iter().map(|k| (k, rec.id)).collect());
        }
        Body::GrantOperator { key } => {
            if next.operators.contains_key(key) {
                return Err(Rejection::BadGrant(format!("{key} is already an operator")));
            }
            next.operators.insert(*key, rec.id);
            next.revoked.remove(key);
        }
        Body::RevokeOperator { key } => {
            if next.operators.remove(key).is_none() {
                return Err(Rejection::BadGrant(format!("{key} is not an operator")));
            }
            if next.operators.is_empty() {
                return Err(Rejection::BadGrant(
                    "cannot revoke the last operator key: grant another one first".into(),
                ));
            }
            next.revoked.insert(*key);
        }
        Body::GrantNamespace { namespace, key } => {
            let ns: Namespace = namespace.parse()?;
            let owners = next
                .namespaces
                .get_mut(&ns)
                .ok_or_else(|| Rejection::NamespaceNotDefined(ns.clone()))?;
            if owners.len() >= super::MAX_KEYS || owners.contains_key(key) {
                return Err(Rejection::BadGrant(format!(
                    "{key} already owns `{ns}` or the namespace has {} owners",
                    super::MAX_KEYS
                )));
            }
            owners.insert(*key, rec.id);
        }
        Body::RevokeNamespace { namespace, key } => {
            let ns: Namespace = namespace.parse()?;
            let owners = next
                .namespaces
                .get_mut(&ns)
                .ok_or_else(|| Rejection::NamespaceNotDefined(ns.clone()))?;
            if owners.remove(key).is_none() {
                return Err(Rejection::BadGrant(format!("{key} does not own `{ns}`")));
            }
            next.revoked.insert(*key);
        }
        Body::SetPolicy { require_spdx } => {
            next.policy.require_spdx = *require_spdx;
        }
        Body::Delete { target, reason } => {
            if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
                return Err(Rejection::OverLimit(format!(
                    "a deletion needs a reason of 1 to {MAX_REASON_BYTES} bytes"
                )));
            }
            match target {
                Target::Package { package } => {
                    package.parse::<PackageName>()?;
                }
                Target::Version { package, version } => {
                    package.parse::<PackageName>()?;
                    semver::Version::parse(version)
                        .map_err(|_| Rejection::MalformedVersion(version.clone()))?;
                }
                Target::Content { .. } => {}
            }
            next.tombstones.push(Tombstone {
                target: target.clone(),
                reason: reason.clone(),
                record: rec.id,
            });
        }
        _ => return Err(misplaced(rec)),
    }
    Ok(next)
}

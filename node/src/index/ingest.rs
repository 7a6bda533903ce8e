//! Applying one record: validation against stored state, storage, index entries, and
//! fork handling, all in one write transaction.
//!
//! Forks: when a validly signed record claims a position that another record holds, the
//! log is rewound to the state before that position (from a per-record snapshot), both
//! records and everything after them on the old branch are moved to the evidence table,
//! and the state is marked forked. Every honest node reaches the same view whichever
//! branch it saw first; an owner's `resolve-fork` record ends the fork.

use ferry_protocol::log::{self, Fork, OperatorState, PackageState, Rejection};
use ferry_protocol::record::{ATTEST_LOG_PREFIX, Body, OPERATOR_LOG, Target};
use ferry_protocol::{ContentId, PackageName, RecordId, SignedRecord};
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::{
    ATTESTATIONS, Applied, BY_CONTENT, EVIDENCE, Effect, INTERFACES, Index, IndexError,
    IngestError, LOG_SEQ, LOG_STATE, RECORDS, RELEASES, ReleaseEntry, TOKENS, cbor, search, uncbor,
};

/// Per-record state snapshots kept per package log: a fork deeper than this is rewound
/// by replaying the log instead.
const SNAPSHOTS_KEPT: u64 = 32;

pub(super) const SNAPSHOTS: redb::TableDefinition<(&str, u64), &[u8]> =
    redb::TableDefinition::new("log_snapshot_v1");

fn st<E: Into<redb::Error>>(e: E) -> IngestError {
    IngestError::Index(IndexError::Storage(e.into().to_string()))
}

impl Index {
    /// Validates `rec` against the stored state of its log and, if valid, stores it with
    /// all its index entries in one transaction. Refused records change nothing.
    pub fn ingest(&self, rec: &SignedRecord, now_ms: u64) -> Result<Applied, IngestError> {
        let tx = self.db.begin_write().map_err(st)?;
        let out = self.ingest_in(&tx, rec, now_ms)?;
        if out != Applied::Duplicate {
            tx.commit().map_err(st)?;
        }
        Ok(out)
    }

    /// Ingests records in order in one transaction (one fsync for a whole sync page).
    /// Each record gets its own result; a record refused by validation writes nothing,
    /// so the others are unaffected. A storage failure aborts the whole batch.
    pub fn ingest_batch(
        &self,
        recs: &[SignedRecord],
        now_ms: u64,
    ) -> Result<Vec<Result<Applied, Rejection>>, IndexError> {
        let tx = self.db.begin_write()?;
        let mut out = Vec::with_capacity(recs.len());
        let mut dirty = false;
        for rec in recs {
            match self.ingest_in(&tx, rec, now_ms) {
                Ok(a) => {
                    dirty |= a != Applied::Duplicate;
                    out.push(Ok(a));
                }
                Err(IngestError::Rejected(r)) => out.push(Err(r)),
                Err(IngestError::Index(e)) => return Err(e),
            }
        }
        if dirty {
            tx.commit()?;
        }
        Ok(out)
    }

    pub(super) fn ingest_in(
        &self,
        tx: &WriteTransaction,
        rec: &SignedRecord,
        now: u64,
    ) -> Result<Applied, IngestError> {
        let key = rec.id.digest().as_slice();
        if tx
            .open_table(RECORDS)
            .map_err(st)?
            .get(key)
            .map_err(st)?
            .is_some()
            || tx
                .open_table(EVIDENCE)
                .map_err(st)?
                .get(key)
                .map_err(st)?
                .is_some()
        {
            return Ok(Applied::Duplicate);
        }
        let r = &rec.record;
        let op: Option<OperatorState> = load(tx, OPERATOR_LOG)?;
        if r.log == OPERATOR_LOG {
            return self.ingest_operator(tx, op, rec, now);
        }
        let op = op.ok_or(Rejection::Gap {
            // Without the operator log nothing can be checked: we are behind.
            log: OPERATOR_LOG.into(),
            expected: 0,
            got: 0,
        })?;
        if r.log.starts_with(ATTEST_LOG_PREFIX) {
            return self.ingest_attest(tx, rec, now);
        }
        let pkg: Option<PackageState> = load(tx, &r.log)?;
        if let (Some(p), Body::ResolveFork { keep }) = (&pkg, &r.body)
            && p.forked.is_some()
        {
            return self.ingest_resolution(tx, &op, p, rec, keep, now);
        }
        match log::apply_package(&op, pkg.as_ref(), rec, now) {
            Ok(next) => {
                append(tx, rec, &next)?;
                snapshot(tx, &r.log, next.head.seq, &next)?;
                let effect = match &r.body {
                    Body::Release(_) => Effect::Release(Box::new(index_release(tx, rec)?)),
                    _ => Effect::None,
                };
                Ok(Applied::New {
                    log: r.log.clone(),
                    seq: r.seq,
                    effect,
                })
            }
            Err(Rejection::Stale { log, seq }) => match pkg {
                Some(p) if p.forked.is_some() => Ok(Applied::Duplicate),
                Some(p) => {
                    self.valid_at(tx, &op, &p, rec, seq, now)?;
                    self.fork_package(tx, &op, p, rec, seq)
                }
                None => Err(Rejection::Stale { log, seq }.into()),
            },
            Err(Rejection::Forked { log, seq }) => match pkg {
                // A third conflicting record at the contested position: more evidence.
                Some(mut p) if r.seq == seq => {
                    self.valid_at(tx, &op, &p, rec, seq, now)?;
                    if let Some(f) = p.forked.as_mut() {
                        f.candidates.push(rec.id);
                        f.candidates.sort();
                    }
                    put_evidence(tx, rec)?;
                    store_state(tx, &log, &p)?;
                    Ok(Applied::Forked { log, seq })
                }
                _ => Err(Rejection::Forked { log, seq }.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    fn ingest_operator(
        &self,
        tx: &WriteTransaction,
        op: Option<OperatorState>,
        rec: &SignedRecord,
        now: u64,
    ) -> Result<Applied, IngestError> {
        match log::apply_operator(&self.network, op.as_ref(), rec, now) {
            Ok(next) => {
                append(tx, rec, &next)?;
                let effect = match &rec.record.body {
                    Body::DefineNamespace { namespace, .. } => namespace
                        .parse()
                        .map(Effect::Namespace)
                        .unwrap_or(Effect::None),
                    Body::Delete { .. } => match next.tombstones.last() {
                        Some(t) => Effect::Deleted {
                            contents: deleted_contents(tx, &t.target)?,
                            tombstone: t.clone(),
                        },
                        None => Effect::None,
                    },
                    _ => Effect::None,
                };
                Ok(Applied::New {
                    log: OPERATOR_LOG.into(),
                    seq: rec.record.seq,
                    effect,
                })
            }
            Err(Rejection::Stale { seq, .. }) => {
                // An operator equivocated. Keep the evidence and freeze the operator log;
                // the state it reached stays (see the README's known limits).
                let Some(mut op) = op else {
                    return Err(Rejection::Stale {
                        log: OPERATOR_LOG.into(),
                        seq,
                    }
                    .into());
                };
                self.operator_valid_at(tx, &op, rec, seq, now)?;
                let existing = id_at(tx, OPERATOR_LOG, seq)?;
                let mut candidates: Vec<RecordId> = existing.into_iter().chain([rec.id]).collect();
                candidates.sort();
                put_evidence(tx, rec)?;
                op.forked = Some(Fork { seq, candidates });
                store_state(tx, OPERATOR_LOG, &op)?;
                Ok(Applied::Forked {
                    log: OPERATOR_LOG.into(),
                    seq,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    fn ingest_attest(
        &self,
        tx: &WriteTransaction,
        rec: &SignedRecord,
        now: u64,
    ) -> Result<Applied, IngestError> {
        let Body::Attest(a) = &rec.record.body else {
            return Err(Rejection::Misplaced {
                body: rec.record.body.kind(),
                log: rec.record.log.clone(),
                seq: rec.record.seq,
            }
            .into());
        };
        let known = tx
            .open_table(RELEASES)
            .map_err(st)?
            .get((a.package.as_str(), normalize_version(&a.version).as_str()))
            .map_err(st)?
            .map(|v| uncbor::<ReleaseEntry>(v.value()))
            .transpose()?
            .is_some_and(|e| e.record == a.release)
            || !follows(tx, &a.package)?;
        let state = load(tx, &rec.record.log)?;
        match log::apply_attest(&self.network, state.as_ref(), rec, known, now) {
            Ok(next) => {
                append(tx, rec, &next)?;
                tx.open_multimap_table(ATTESTATIONS)
                    .map_err(st)?
                    .insert(a.release.digest().as_slice(), rec.id.digest().as_slice())
                    .map_err(st)?;
                Ok(Applied::New {
                    log: rec.record.log.clone(),
                    seq: rec.record.seq,
                    effect: Effect::None,
                })
            }
            Err(Rejection::Stale { log, seq }) => {
                // An attester contradicting itself harms nobody: keep the evidence.
                put_evidence(tx, rec)?;
                Ok(Applied::Forked { log, seq })
            }
            Err(e) => Err(e.into()),
        }
    }

    fn fork_package(
        &self,
        tx: &WriteTransaction,
        op: &OperatorState,
        current: PackageState,
        rec: &SignedRecord,
        seq: u64,
    ) -> Result<Applied, IngestError> {
        let log = rec.record.log.clone();
        let existing = id_at(tx, &log, seq)?;
        let mut candidates: Vec<RecordId> = existing.into_iter().chain([rec.id]).collect();
        candidates.sort();
        tracing::warn!(target: "ferry::log", %log, seq, "equivocation: conflicting signed records, log forked");
        // Move the old branch from `seq` on to the evidence table.
        let dropped: Vec<(u64, Vec<u8>)> = {
            let seqs = tx.open_table(LOG_SEQ).map_err(st)?;
            let recs = tx.open_table(RECORDS).map_err(st)?;
            let mut out = Vec::new();
            for item in seqs
                .range((log.as_str(), seq)..=(log.as_str(), u64::MAX))
                .map_err(st)?
            {
                let (k, id) = item.map_err(st)?;
                if let Some(b) = recs.get(id.value()).map_err(st)? {
                    out.push((k.value().1, b.value().to_vec()));
                }
            }
            out
        };
        {
            let mut seqs = tx.open_table(LOG_SEQ).map_err(st)?;
            let mut recs = tx.open_table(RECORDS).map_err(st)?;
            let mut ev = tx.open_table(EVIDENCE).map_err(st)?;
            for (s, bytes) in &dropped {
                let id = RecordId::of(bytes);
                seqs.remove((log.as_str(), *s)).map_err(st)?;
                recs.remove(id.digest().as_slice()).map_err(st)?;
                ev.insert(id.digest().as_slice(), bytes.as_slice())
                    .map_err(st)?;
            }
        }
        put_evidence(tx, rec)?;
        let prefix = if seq == 0 {
            None
        } else {
            self.prefix_state(tx, op, &log, seq)?
        };
        let fork = Fork { seq, candidates };
        let state = match prefix {
            Some(p) => PackageState {
                forked: Some(fork),
                ..p
            },
            // A fork of the very first record: nothing of the log stands.
            None => PackageState {
                versions: Default::default(),
                grants: Default::default(),
                revoked: Default::default(),
                forked: Some(fork),
                ..current
            },
        };
        store_state(tx, &log, &state)?;
        reindex_package(tx, &state)?;
        Ok(Applied::Forked { log, seq })
    }

    /// Checks that `rec`, which claims position `seq` of its package log where another
    /// record already stands, would have been valid there: only then is it an
    /// equivocation. Otherwise anyone could fork any log with a record signed by a key
    /// of their own. The check uses the current operator state, so a key whose
    /// namespace rights were revoked since can no longer fork the history it wrote.
    fn valid_at(
        &self,
        tx: &WriteTransaction,
        op: &OperatorState,
        current: &PackageState,
        rec: &SignedRecord,
        seq: u64,
        now: u64,
    ) -> Result<(), IngestError> {
        let package: PackageName = rec.record.log.parse().map_err(Rejection::from)?;
        let ns = package.namespace();
        // Cheap first: a key that never had any right in this log cannot have signed a
        // valid record in it, and must not cost us a replay of the log.
        let known = op
            .namespaces
            .get(ns)
            .is_some_and(|owners| owners.contains_key(&rec.signer))
            || current.grants.contains_key(&rec.signer)
            || current.revoked.contains(&rec.signer);
        if !known {
            return Err(Rejection::NotAllowedInNamespace {
                key: rec.signer,
                namespace: ns.clone(),
                action: "sign records",
                why: "it never held any right in this package",
            }
            .into());
        }
        let prefix = if seq == 0 {
            None
        } else {
            self.prefix_state(tx, op, &rec.record.log, seq)?
        };
        log::apply_package(op, prefix.as_ref(), rec, now)?;
        Ok(())
    }

    /// As [`Self::valid_at`] for the operator log: the record must come from an operator
    /// and apply to the operator log as it stood before `seq`.
    fn operator_valid_at(
        &self,
        tx: &WriteTransaction,
        op: &OperatorState,
        rec: &SignedRecord,
        seq: u64,
        now: u64,
    ) -> Result<(), IngestError> {
        if !op.operators.contains_key(&rec.signer) && !op.revoked.contains(&rec.signer) {
            return Err(Rejection::UnknownSigner(rec.signer).into());
        }
        let seqs = tx.open_table(LOG_SEQ).map_err(st)?;
        let recs = tx.open_table(RECORDS).map_err(st)?;
        let mut state: Option<OperatorState> = None;
        for item in seqs
            .range((OPERATOR_LOG, 0)..(OPERATOR_LOG, seq))
            .map_err(st)?
        {
            let (_, id) = item.map_err(st)?;
            let Some(b) = recs.get(id.value()).map_err(st)? else {
                continue;
            };
            let Ok(r) = SignedRecord::decode(b.value()) else {
                continue;
            };
            match log::apply_operator(&self.network, state.as_ref(), &r, u64::MAX / 2) {
                Ok(s) => state = Some(s),
                Err(_) => break,
            }
        }
        log::apply_operator(&self.network, state.as_ref(), rec, now)?;
        Ok(())
    }

    /// The state of `log` after `seq - 1`: from a snapshot, or by replaying the log.
    fn prefix_state(
        &self,
        tx: &WriteTransaction,
        op: &OperatorState,
        log: &str,
        seq: u64,
    ) -> Result<Option<PackageState>, IngestError> {
        if let Some(v) = tx
            .open_table(SNAPSHOTS)
            .map_err(st)?
            .get((log, seq - 1))
            .map_err(st)?
        {
            return Ok(Some(uncbor(v.value())?));
        }
        tracing::warn!(target: "ferry::log", %log, seq, "fork deeper than the snapshots kept: replaying the log");
        let seqs = tx.open_table(LOG_SEQ).map_err(st)?;
        let recs = tx.open_table(RECORDS).map_err(st)?;
        let mut state: Option<PackageState> = None;
        for item in seqs.range((log, 0)..(log, seq)).map_err(st)? {
            let (_, id) = item.map_err(st)?;
            let Some(b) = recs.get(id.value()).map_err(st)? else {
                continue;
            };
            let Ok(r) = SignedRecord::decode(b.value()) else {
                continue;
            };
            // Records were valid when applied; a later revocation may refuse them now,
            // in which case the state stays at the last record that still applies.
            match log::apply_package(op, state.as_ref(), &r, u64::MAX / 2) {
                Ok(s) => state = Some(s),
                Err(_) => break,
            }
        }
        Ok(state)
    }

    fn ingest_resolution(
        &self,
        tx: &WriteTransaction,
        op: &OperatorState,
        state: &PackageState,
        rec: &SignedRecord,
        keep: &RecordId,
        now: u64,
    ) -> Result<Applied, IngestError> {
        let keep_bytes = tx
            .open_table(EVIDENCE)
            .map_err(st)?
            .get(keep.digest().as_slice())
            .map_err(st)?
            .map(|v| v.value().to_vec())
            .ok_or(Rejection::UnknownRelease(*keep))?;
        let keep_rec = SignedRecord::decode(&keep_bytes).map_err(Rejection::from)?;
        let next = log::resolve_fork(op, state, &keep_rec, rec, now)?;
        tx.open_table(EVIDENCE)
            .map_err(st)?
            .remove(keep.digest().as_slice())
            .map_err(st)?;
        append(tx, &keep_rec, &next)?;
        append(tx, rec, &next)?;
        snapshot(tx, &rec.record.log, next.head.seq, &next)?;
        let effect = match &keep_rec.record.body {
            Body::Release(_) => Effect::Release(Box::new(index_release(tx, &keep_rec)?)),
            _ => Effect::None,
        };
        Ok(Applied::New {
            log: rec.record.log.clone(),
            seq: rec.record.seq,
            effect,
        })
    }
}

fn normalize_version(v: &str) -> String {
    semver::Version::parse(v)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| v.to_string())
}

/// Whether this node's pins follow `package`'s log. An attester log mixes packages;
/// a node that does not follow a package cannot check that an attested release
/// exists, and must not let that stop it from following the rest of the attester's
/// log. Such an attestation is only ever shown next to the release it names, so one
/// naming a release that does not exist is never shown.
fn follows(tx: &WriteTransaction, package: &str) -> Result<bool, IngestError> {
    let t = tx.open_table(super::holds::PINS).map_err(st)?;
    if t.is_empty().map_err(st)? {
        return Ok(true);
    }
    let Ok(pkg) = package.parse::<PackageName>() else {
        return Ok(true);
    };
    for item in t.iter().map_err(st)? {
        let (_, v) = item.map_err(st)?;
        let stored: super::holds::StoredPin = uncbor(v.value())?;
        if stored.pin.filter().covers_package(&pkg) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn load<T: for<'de> serde::Deserialize<'de>>(
    tx: &WriteTransaction,
    log: &str,
) -> Result<Option<T>, IngestError> {
    let t = tx.open_table(LOG_STATE).map_err(st)?;
    let v = t
        .get(log)
        .map_err(st)?
        .map(|v| uncbor(v.value()))
        .transpose()?;
    Ok(v)
}

fn store_state<T: serde::Serialize>(
    tx: &WriteTransaction,
    log: &str,
    state: &T,
) -> Result<(), IngestError> {
    tx.open_table(LOG_STATE)
        .map_err(st)?
        .insert(log, cbor(state).as_slice())
        .map_err(st)?;
    Ok(())
}

fn append<T: serde::Serialize>(
    tx: &WriteTransaction,
    rec: &SignedRecord,
    state: &T,
) -> Result<(), IngestError> {
    let r = &rec.record;
    tx.open_table(RECORDS)
        .map_err(st)?
        .insert(rec.id.digest().as_slice(), rec.bytes.as_slice())
        .map_err(st)?;
    tx.open_table(LOG_SEQ)
        .map_err(st)?
        .insert((r.log.as_str(), r.seq), rec.id.digest().as_slice())
        .map_err(st)?;
    store_state(tx, &r.log, state)
}

fn snapshot(
    tx: &WriteTransaction,
    log: &str,
    seq: u64,
    state: &PackageState,
) -> Result<(), IngestError> {
    let mut t = tx.open_table(SNAPSHOTS).map_err(st)?;
    t.insert((log, seq), cbor(state).as_slice()).map_err(st)?;
    if seq >= SNAPSHOTS_KEPT {
        t.remove((log, seq - SNAPSHOTS_KEPT)).map_err(st)?;
    }
    Ok(())
}

fn put_evidence(tx: &WriteTransaction, rec: &SignedRecord) -> Result<(), IngestError> {
    tx.open_table(EVIDENCE)
        .map_err(st)?
        .insert(rec.id.digest().as_slice(), rec.bytes.as_slice())
        .map_err(st)?;
    Ok(())
}

fn id_at(tx: &WriteTransaction, log: &str, seq: u64) -> Result<Option<RecordId>, IngestError> {
    let t = tx.open_table(LOG_SEQ).map_err(st)?;
    let id = t
        .get((log, seq))
        .map_err(st)?
        .and_then(|v| <[u8; 32]>::try_from(v.value()).ok())
        .map(RecordId::from_digest);
    Ok(id)
}

/// Adds a release's index entries.
fn index_release(tx: &WriteTransaction, rec: &SignedRecord) -> Result<ReleaseEntry, IngestError> {
    let Body::Release(rel) = &rec.record.body else {
        return Err(IngestError::Index(IndexError::Corrupt(
            "not a release".into(),
        )));
    };
    let e = ReleaseEntry {
        package: rec.record.log.parse().map_err(Rejection::from)?,
        version: log::check_release(rel)?,
        kind: rel.kind,
        content: rel.content,
        size: rel.size,
        chunks: rel.chunks.to_vec(),
        description: rel.description.clone(),
        license: rel.license.clone(),
        publisher: rec.signer,
        record: rec.id,
        time_ms: rec.record.time_ms,
        summary: rel.summary.clone(),
        attachments: rel.attachments.clone(),
    };
    let pkg = e.package.to_string();
    let ver = e.version.to_string();
    tx.open_table(RELEASES)
        .map_err(st)?
        .insert((pkg.as_str(), ver.as_str()), cbor(&e).as_slice())
        .map_err(st)?;
    tx.open_multimap_table(BY_CONTENT)
        .map_err(st)?
        .insert(e.content.digest().as_slice(), (pkg.as_str(), ver.as_str()))
        .map_err(st)?;
    let mut tokens = tx.open_multimap_table(TOKENS).map_err(st)?;
    for t in search::tokens_of(&e.package, e.description.as_deref()) {
        tokens.insert(t.as_str(), pkg.as_str()).map_err(st)?;
    }
    let mut ifaces = tx.open_multimap_table(INTERFACES).map_err(st)?;
    for k in search::interface_keys(&e) {
        ifaces
            .insert(k.as_str(), (pkg.as_str(), ver.as_str()))
            .map_err(st)?;
    }
    Ok(e)
}

/// Makes the release index of a package match `state` after a rewind: drops releases
/// the state no longer holds, and rebuilds the package's search tokens.
fn reindex_package(tx: &WriteTransaction, state: &PackageState) -> Result<(), IngestError> {
    let pkg = state.package.to_string();
    let all: Vec<ReleaseEntry> = {
        let t = tx.open_table(RELEASES).map_err(st)?;
        let mut out = Vec::new();
        for item in t
            .range((pkg.as_str(), "")..(pkg.as_str(), "\u{10ffff}"))
            .map_err(st)?
        {
            let (_, v) = item.map_err(st)?;
            out.push(uncbor::<ReleaseEntry>(v.value())?);
        }
        out
    };
    let mut rel = tx.open_table(RELEASES).map_err(st)?;
    let mut by = tx.open_multimap_table(BY_CONTENT).map_err(st)?;
    let mut tokens = tx.open_multimap_table(TOKENS).map_err(st)?;
    let mut ifaces = tx.open_multimap_table(INTERFACES).map_err(st)?;
    let kept = |e: &ReleaseEntry| {
        state
            .versions
            .get(&e.version)
            .is_some_and(|v| v.record == e.record)
    };
    for e in &all {
        for t in search::tokens_of(&e.package, e.description.as_deref()) {
            tokens.remove(t.as_str(), pkg.as_str()).map_err(st)?;
        }
        if !kept(e) {
            let ver = e.version.to_string();
            for k in search::interface_keys(e) {
                ifaces
                    .remove(k.as_str(), (pkg.as_str(), ver.as_str()))
                    .map_err(st)?;
            }
            rel.remove((pkg.as_str(), ver.as_str())).map_err(st)?;
            by.remove(e.content.digest().as_slice(), (pkg.as_str(), ver.as_str()))
                .map_err(st)?;
        }
    }
    for e in all.iter().filter(|e| kept(e)) {
        for t in search::tokens_of(&e.package, e.description.as_deref()) {
            tokens.insert(t.as_str(), pkg.as_str()).map_err(st)?;
        }
    }
    Ok(())
}

/// Blobs a tombstone removes.
fn deleted_contents(tx: &WriteTransaction, target: &Target) -> Result<Vec<ContentId>, IngestError> {
    let rel = tx.open_table(RELEASES).map_err(st)?;
    let mut out = Vec::new();
    match target {
        Target::Content { content } => out.push(*content),
        Target::Version { package, version } => {
            if let Some(v) = rel
                .get((package.as_str(), normalize_version(version).as_str()))
                .map_err(st)?
            {
                let e = uncbor::<ReleaseEntry>(v.value())?;
                out.push(e.content);
                out.extend(e.attachments.blobs().map(|(_, a)| a.content));
            }
        }
        Target::Package { package } => {
            let _: PackageName = package.parse().map_err(Rejection::from)?;
            for item in rel
                .range((package.as_str(), "")..(package.as_str(), "\u{10ffff}"))
                .map_err(st)?
            {
                let (_, v) = item.map_err(st)?;
                let e = uncbor::<ReleaseEntry>(v.value())?;
                out.push(e.content);
                out.extend(e.attachments.blobs().map(|(_, a)| a.content));
            }
        }
    }
    Ok(out)
}

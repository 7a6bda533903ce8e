//! Local writes: sign records with this node's publisher key, validate them exactly as
//! a remote record would be validated, store them, then announce them.

use ferry_protocol::log;
use ferry_protocol::record::{
    ATTEST_LOG_PREFIX, Body, OPERATOR_LOG, RECORD_FORMAT, Record, Release, attest_log,
};
use ferry_protocol::{Namespace, PublicKey, SignedRecord, chunk};
use serde_bytes::ByteBuf;

use super::EventLoop;
use crate::command::{Draft, WriteError};
use crate::index::{Applied, Effect, ReleaseEntry};
use crate::node::now_ms;
use crate::swarm;

impl EventLoop {
    fn record(
        &self,
        log: String,
        seq: u64,
        prev: Option<ferry_protocol::RecordId>,
        body: Body,
    ) -> SignedRecord {
        SignedRecord::sign(
            &self.key,
            Record {
                format: RECORD_FORMAT,
                network: Some(self.network),
                log,
                seq,
                prev,
                time_ms: now_ms(),
                body,
            },
        )
    }

    fn announce(&mut self, topic: libp2p::gossipsub::IdentTopic, rec: &SignedRecord) {
        // With no subscribed peer yet this fails; sync delivers the record instead.
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, rec.bytes.clone())
        {
            tracing::debug!(target: "ferry::gossip", id = %rec.id, "not gossiped now ({e}); peers will sync it");
        }
    }

    pub(super) fn publish(&mut self, d: Draft) -> Result<ReleaseEntry, WriteError> {
        let now = now_ms();
        let op = self.index.operator_state()?.ok_or(WriteError::NotSynced)?;
        let log_name = d.package.to_string();
        let mut to_store = Vec::new();
        let state = match self.index.package_state(&d.package)? {
            Some(s) => s,
            None => {
                let init = self.record(
                    log_name.clone(),
                    0,
                    None,
                    Body::PackageInit { kind: d.kind },
                );
                let s = log::apply_package(&op, None, &init, now)?;
                to_store.push(init);
                s
            }
        };
        let release = self.record(
            log_name,
            state.head.seq + 1,
            Some(state.head.id),
            Body::Release(Release {
                version: d.version.to_string(),
                kind: d.kind,
                content: d.content,
                size: d.size,
                chunk_size: chunk::CHUNK_SIZE,
                chunks: ByteBuf::from(d.chunks),
                description: d.description,
                license: d.license,
                summary: Some(d.summary),
                attachments: d.attachments.clone(),
            }),
        );
        // Check the whole write before storing any of it, so a refused release never
        // leaves a half-made package behind.
        log::apply_package(&op, Some(&state), &release, now)?;
        to_store.push(release);
        let mut entry = None;
        for rec in &to_store {
            if let Applied::New {
                effect: Effect::Release(r),
                ..
            } = self.index.ingest(rec, now)?
            {
                entry = Some(*r);
            }
        }
        let topic = swarm::namespace_topic(&self.network, d.package.namespace());
        for rec in &to_store {
            self.announce(topic.clone(), rec);
        }
        self.provide(&d.content);
        let attached: Vec<_> = d
            .attachments
            .blobs()
            .map(|(_, a)| a.content)
            .chain(d.extra_blobs.iter().copied())
            .collect();
        for id in &attached {
            self.provide(id);
        }
        // The files of its assets tree are named through the tree.
        self.named.extend(d.extra_blobs.iter().copied());
        // Published here: kept whatever the pins say, until the operator deletes it.
        let mut own = attached;
        own.push(d.content);
        self.index.mark_published(&own, now)?;
        let entry = entry.ok_or_else(|| WriteError::Conflict("release was not applied".into()))?;
        self.named.extend(crate::index::blobs_of(&entry));
        self.shared.note_release(&entry);
        self.probe_release(&entry);
        Ok(entry)
    }

    pub(super) fn define_namespace(
        &mut self,
        ns: Namespace,
        owners: Vec<PublicKey>,
    ) -> Result<(), WriteError> {
        let op = self.index.operator_state()?.ok_or(WriteError::NotSynced)?;
        let rec = self.record(
            OPERATOR_LOG.into(),
            op.head.seq + 1,
            Some(op.head.id),
            Body::DefineNamespace {
                namespace: ns.to_string(),
                owners,
            },
        );
        self.index.ingest(&rec, now_ms())?;
        self.update_subscriptions();
        self.announce(swarm::operator_topic(&self.network), &rec);
        Ok(())
    }
}

impl EventLoop {
    /// Ingests a record signed elsewhere exactly as if a peer had sent it, then
    /// announces it on its log's topic.
    pub(super) fn submit(&mut self, rec: SignedRecord) -> Result<bool, WriteError> {
        let topic = if rec.record.log == OPERATOR_LOG {
            swarm::operator_topic(&self.network)
        } else {
            let ns_of = |name: &str| -> Result<Namespace, WriteError> {
                let pkg: ferry_protocol::PackageName =
                    name.parse().map_err(ferry_protocol::log::Rejection::from)?;
                Ok(pkg.namespace().clone())
            };
            let ns = match &rec.record.body {
                Body::Attest(a) => ns_of(&a.package)?,
                _ => ns_of(&rec.record.log)?,
            };
            swarm::namespace_topic(&self.network, &ns)
        };
        match self.index.ingest(&rec, now_ms()) {
            Ok(Applied::New { effect, .. }) => {
                self.on_effect(effect);
                self.announce(topic, &rec);
                Ok(true)
            }
            Ok(Applied::Duplicate) => Ok(false),
            Ok(Applied::Forked { log, seq }) => {
                self.announce(topic, &rec);
                Err(WriteError::Conflict(format!(
                    "the record conflicts with another at {log} seq {seq}: the log is now forked"
                )))
            }
            Err(crate::index::IngestError::Rejected(r)) => Err(r.into()),
            Err(crate::index::IngestError::Index(e)) => Err(e.into()),
        }
    }

    /// Signs `body` and appends it to `log` (attestations go to our attester log).
    pub(super) fn append(
        &mut self,
        log: String,
        body: Body,
    ) -> Result<ferry_protocol::RecordId, WriteError> {
        let now = now_ms();
        let (log, topic) = match &body {
            Body::OperatorInit { .. } | Body::PackageInit { .. } | Body::Release(_) => {
                return Err(WriteError::Unsupported(format!(
                    "a `{}` record is made by `ferry init` or `ferry publish`",
                    body.kind()
                )));
            }
            Body::Attest(a) => {
                let pkg: ferry_protocol::PackageName = a
                    .package
                    .parse()
                    .map_err(ferry_protocol::log::Rejection::from)?;
                (
                    attest_log(&self.key.public()),
                    swarm::namespace_topic(&self.network, pkg.namespace()),
                )
            }
            Body::DefineNamespace { .. }
            | Body::GrantOperator { .. }
            | Body::RevokeOperator { .. }
            | Body::GrantNamespace { .. }
            | Body::RevokeNamespace { .. }
            | Body::SetPolicy { .. }
            | Body::Delete { .. } => (
                OPERATOR_LOG.to_string(),
                swarm::operator_topic(&self.network),
            ),
            _ => {
                let pkg: ferry_protocol::PackageName =
                    log.parse().map_err(ferry_protocol::log::Rejection::from)?;
                (log, swarm::namespace_topic(&self.network, pkg.namespace()))
            }
        };
        if self.index.operator_state()?.is_none() {
            return Err(WriteError::NotSynced);
        }
        let (head, fork) = match self.index.head(&log)? {
            Some(h) => (Some(h.0), h.1),
            None if log.starts_with(ATTEST_LOG_PREFIX) => (None, Vec::new()),
            None => return Err(WriteError::UnknownPackage(log)),
        };
        let (seq, prev) = match (&body, head) {
            // A resolution follows the record it keeps, one past the forked position.
            (Body::ResolveFork { keep }, Some(h)) if !fork.is_empty() => (h.seq + 2, Some(*keep)),
            (_, Some(h)) => (h.seq + 1, Some(h.id)),
            (_, None) => (0, None),
        };
        let rec = self.record(log, seq, prev, body);
        let applied = self.index.ingest(&rec, now)?;
        if let Applied::New { effect, .. } = applied {
            self.on_effect(effect);
        }
        self.announce(topic, &rec);
        Ok(rec.id)
    }
}

//! Misbehaving nodes: a bare Ferry swarm driven by hand that gossips forged and invalid
//! records, answers sync with forgeries and claims of longer logs, announces itself as
//! a provider of every blob it hears of, and serves garbage chunks.
//!
//! Every forged message's id is kept, so the run can check afterwards that no honest
//! node accepted any of them.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_node::embedded::{Gate, Traffic, build_swarm};
use ferry_node::libp2p::swarm::SwarmEvent;
use ferry_node::libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identity, request_response};
use ferry_node::swarm::{self, Behaviour, BehaviourEvent};
use ferry_protocol::component::PackageKind;
use ferry_protocol::record::{Body, OPERATOR_LOG, RECORD_FORMAT, Record, Release};
use ferry_protocol::wire::{BlobResponse, LogHead, MAX_HEADS, SyncRequest, SyncResponse};
use ferry_protocol::{ContentId, Keypair, Namespace, NetworkId, PublicKey, RecordId, SignedRecord};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_bytes::ByteBuf;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::scenario::AdversaryPlan;

/// Most blobs one adversary pretends to provide.
const MAX_FAKE_PROVIDED: usize = 1024;
/// How often an adversary asks a peer for log heads (to forge "next" records).
const HEADS_INTERVAL: Duration = Duration::from_secs(2);
/// A claimed record time in the past, so no forgery fails for being from the future.
const FORGED_TIME_MS: u64 = 1_780_000_100_000;

/// What all adversaries of a run sent.
#[derive(Default)]
pub struct Forgeries {
    ids: Mutex<Vec<RecordId>>,
    keys: Mutex<Vec<PublicKey>>,
    kinds: Mutex<BTreeMap<&'static str, u64>>,
    gossiped: AtomicU64,
    served: AtomicU64,
}

impl Forgeries {
    /// Ids of every forged record sent (by gossip or sync).
    pub fn ids(&self) -> Vec<RecordId> {
        self.ids.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The keys adversaries sign with: no honest log may contain a record by them.
    pub fn keys(&self) -> Vec<PublicKey> {
        self.keys.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Forgeries gossiped (accepted by gossipsub for sending).
    pub fn gossiped(&self) -> u64 {
        self.gossiped.load(Ordering::Relaxed)
    }

    /// Forged sync answers and garbage chunks served.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Forgeries sent, by kind.
    pub fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        self.kinds.lock().map(|k| k.clone()).unwrap_or_default()
    }

    fn note(&self, kind: &'static str, bytes: &[u8]) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.push(RecordId::of(bytes));
        }
        if let Ok(mut k) = self.kinds.lock() {
            *k.entry(kind).or_default() += 1;
        }
    }
}

/// What an adversary knows of the network: all public.
#[derive(Clone)]
pub struct Knowledge {
    /// The network.
    pub network: NetworkId,
    /// Namespaces and their owners' keys.
    pub namespaces: Vec<(Namespace, PublicKey)>,
    /// Honest nodes to dial.
    pub targets: Vec<Multiaddr>,
}

/// A running adversary.
pub struct Adversary {
    /// Its libp2p identity.
    pub peer: PeerId,
    /// Its traffic.
    pub traffic: Arc<Traffic>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Adversary {
    /// Starts an adversary on memory port `port`.
    pub fn spawn(
        plan: &AdversaryPlan,
        port: u64,
        know: Knowledge,
        gate: Arc<Gate>,
        forgeries: Arc<Forgeries>,
        interval: Duration,
    ) -> Result<Self, String> {
        let node_key = identity::Keypair::ed25519_from_bytes(plan.node_seed)
            .map_err(|e| format!("adversary key: {e}"))?;
        let peer = node_key.public().to_peer_id();
        let traffic = Arc::new(Traffic::default());
        let mut swarm =
            build_swarm(node_key, traffic.clone(), Some(gate), None).map_err(|e| e.to_string())?;
        let listen = Multiaddr::empty().with(ferry_node::libp2p::multiaddr::Protocol::Memory(port));
        swarm
            .listen_on(listen)
            .map_err(|e| format!("adversary listen: {e:?}"))?;
        let key = Keypair::from_seed(plan.key_seed);
        if let Ok(mut k) = forgeries.keys.lock() {
            k.push(key.public());
        }
        let (stop, stopped) = oneshot::channel();
        let state = State {
            swarm,
            key,
            know,
            rng: StdRng::seed_from_u64(plan.rng_seed),
            heads: BTreeMap::new(),
            connected: HashSet::new(),
            provided: HashSet::new(),
            forgeries,
            counter: 0,
        };
        let task = tokio::spawn(state.run(interval, stopped));
        Ok(Self {
            peer,
            traffic,
            stop,
            task,
        })
    }

    /// Stops the adversary.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct State {
    swarm: Swarm<Behaviour>,
    key: Keypair,
    know: Knowledge,
    rng: StdRng,
    /// Heads learned from honest peers.
    heads: BTreeMap<String, LogHead>,
    connected: HashSet<PeerId>,
    provided: HashSet<ContentId>,
    forgeries: Arc<Forgeries>,
    counter: u64,
}

impl State {
    async fn run(mut self, interval: Duration, mut stopped: oneshot::Receiver<()>) {
        let net = self.know.network;
        let mut topics = vec![swarm::operator_topic(&net)];
        topics.extend(
            self.know
                .namespaces
                .iter()
                .map(|(ns, _)| swarm::namespace_topic(&net, ns)),
        );
        for t in &topics {
            let _ = self.swarm.behaviour_mut().gossipsub.subscribe(t);
        }
        for a in self.know.targets.clone() {
            let _ = self.swarm.dial(a);
        }
        let mut forge = tokio::time::interval(interval);
        let mut ask = tokio::time::interval(HEADS_INTERVAL);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                ev = self.swarm.select_next_some() => self.on_event(ev),
                _ = forge.tick() => self.gossip_forgery(),
                _ = ask.tick() => self.ask_heads(),
            }
        }
    }

    fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                self.connected.insert(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                // Never forward honest records; learn which blobs exist to lie about.
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        gossipsub::MessageAcceptance::Ignore,
                    );
                if let Ok(rec) = SignedRecord::decode(&message.data)
                    && let Body::Release(r) = rec.record.body
                    && self.provided.len() < MAX_FAKE_PROVIDED
                    && self.provided.insert(r.content)
                {
                    let key = swarm::blob_key(&self.know.network, &r.content);
                    let _ = self.swarm.behaviour_mut().kad.start_providing(key);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            })) => {
                let len = self.rng.random_range(64..2048);
                let garbage: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
                self.forgeries.served.fetch_add(1, Ordering::Relaxed);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .blob
                    .send_response(channel, BlobResponse::Chunk(ByteBuf::from(garbage)));
            }
            _ => {}
        }
    }

    fn on_sync(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        match ev {
            request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let resp = match request {
                    // Claim every log is one record longer than it is.
                    SyncRequest::Heads { .. } => SyncResponse::Heads {
                        heads: self
                            .heads
                            .values()
                            .map(|h| LogHead {
                                log: h.log.clone(),
                                seq: h.seq + 1,
                                id: RecordId::of(&self.rng.random::<[u8; 32]>()),
                                fork: Vec::new(),
                            })
                            .collect(),
                        more: false,
                    },
                    SyncRequest::Records { log, from_seq, .. } => {
                        let prev = self.heads.get(&log).map(|h| h.id);
                        let bytes = self.unauthorized(&log, from_seq, prev);
                        self.forgeries.note("sync-unauthorized", &bytes);
                        SyncResponse::Records(vec![ByteBuf::from(bytes)])
                    }
                    SyncRequest::ById { .. } => {
                        let bytes = self.garbage();
                        self.forgeries.note("sync-garbage", &bytes);
                        SyncResponse::Records(vec![ByteBuf::from(bytes)])
                    }
                };
                self.forgeries.served.fetch_add(1, Ordering::Relaxed);
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, resp);
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        response: SyncResponse::Heads { heads, .. },
                        ..
                    },
                ..
            } => {
                for h in heads.into_iter().take(MAX_HEADS as usize) {
                    self.heads.insert(h.log.clone(), h);
                }
            }
            _ => {}
        }
    }

    fn ask_heads(&mut self) {
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        if peers.is_empty() {
            for a in self.know.targets.clone() {
                let _ = self.swarm.dial(a);
            }
            return;
        }
        let p = peers[self.rng.random_range(0..peers.len())];
        self.swarm.behaviour_mut().sync.send_request(
            &p,
            SyncRequest::Heads {
                network: self.know.network,
                after: None,
                limit: MAX_HEADS,
            },
        );
    }

    /// A package log the adversary has heard of (or a guess), with its head.
    fn pick_package(&mut self) -> (String, u64, Option<RecordId>, usize) {
        let known: Vec<&LogHead> = self
            .heads
            .values()
            .filter(|h| h.log != OPERATOR_LOG && h.log.contains(':'))
            .collect();
        if !known.is_empty() {
            let h = known[self.rng.random_range(0..known.len())];
            let ns = h.log.split(':').next().unwrap_or_default();
            let ns_idx = self
                .know
                .namespaces
                .iter()
                .position(|(n, _)| n.as_str() == ns)
                .unwrap_or(0);
            return (h.log.clone(), h.seq + 1, Some(h.id), ns_idx);
        }
        let ns_idx = self.rng.random_range(0..self.know.namespaces.len());
        let log = format!("{}:router", self.know.namespaces[ns_idx].0);
        (log, 1, None, ns_idx)
    }

    fn record(
        &mut self,
        network: Option<NetworkId>,
        log: String,
        seq: u64,
        prev: Option<RecordId>,
        body: Body,
    ) -> SignedRecord {
        SignedRecord::sign(
            &self.key,
            Record {
                format: RECORD_FORMAT,
                network,
                log,
                seq,
                prev,
                time_ms: FORGED_TIME_MS + self.counter,
                body,
            },
        )
    }

    fn release_body(&mut self) -> Body {
        self.counter += 1;
        let fake: [u8; 32] = self.rng.random();
        Body::Release(Release {
            version: format!("9.{}.0", self.counter),
            kind: PackageKind::Component,
            content: ContentId::of(&fake),
            size: 32,
            chunk_size: ferry_protocol::chunk::CHUNK_SIZE,
            chunks: ByteBuf::from(ferry_protocol::content_id::sha256(&fake).to_vec()),
            description: Some("totally legit".into()),
            license: None,
            summary: None,
            attachments: Default::default(),
        })
    }

    /// A release signed (validly) by the adversary's own key, which owns nothing.
    fn unauthorized(&mut self, log: &str, seq: u64, prev: Option<RecordId>) -> Vec<u8> {
        let body = self.release_body();
        let net = Some(self.know.network);
        self.record(net, log.to_string(), seq, prev, body).bytes
    }

    fn garbage(&mut self) -> Vec<u8> {
        let len = self.rng.random_range(16..512);
        (0..len).map(|_| self.rng.random()).collect()
    }

    fn gossip_forgery(&mut self) {
        let net = self.know.network;
        let (kind, bytes, ns_idx): (&'static str, Vec<u8>, Option<usize>) =
            match self.rng.random_range(0..6u32) {
                0 => {
                    let (log, seq, prev, ns) = self.pick_package();
                    (
                        "unauthorized-release",
                        self.unauthorized(&log, seq, prev),
                        Some(ns),
                    )
                }
                1 => {
                    // The owner's name on the adversary's signature.
                    let (log, seq, prev, ns) = self.pick_package();
                    let bytes = self.unauthorized(&log, seq, prev);
                    let owner = self.know.namespaces[ns].1;
                    let forged = impersonate(&bytes, &owner).unwrap_or(bytes);
                    ("impersonated-release", forged, Some(ns))
                }
                2 => {
                    let head = self.heads.get(OPERATOR_LOG).cloned();
                    self.counter += 1;
                    let body = Body::DefineNamespace {
                        namespace: format!("evil{}", self.counter),
                        owners: vec![self.key.public()],
                    };
                    let rec = self.record(
                        Some(net),
                        OPERATOR_LOG.into(),
                        head.as_ref().map_or(1, |h| h.seq + 1),
                        head.map(|h| h.id),
                        body,
                    );
                    ("forged-namespace", rec.bytes, None)
                }
                3 => {
                    let (log, seq, prev, ns) = self.pick_package();
                    let body = self.release_body();
                    let other = RecordId::of(&self.rng.random::<[u8; 32]>());
                    let rec = self.record(Some(other), log, seq, prev, body);
                    ("wrong-network", rec.bytes, Some(ns))
                }
                4 => {
                    let ns = self.rng.random_range(0..self.know.namespaces.len());
                    self.counter += 1;
                    let log = format!("{}:squat{}", self.know.namespaces[ns].0, self.counter);
                    let rec = self.record(
                        Some(net),
                        log,
                        0,
                        None,
                        Body::PackageInit {
                            kind: PackageKind::Component,
                        },
                    );
                    ("squatted-package", rec.bytes, Some(ns))
                }
                _ => {
                    let ns = self.rng.random_range(0..self.know.namespaces.len());
                    ("garbage", self.garbage(), Some(ns))
                }
            };
        let topic = match ns_idx {
            Some(i) => swarm::namespace_topic(&net, &self.know.namespaces[i].0),
            None => swarm::operator_topic(&net),
        };
        self.forgeries.note(kind, &bytes);
        if self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, bytes)
            .is_ok()
        {
            self.forgeries.gossiped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `bytes` (a signed envelope) with its signer replaced by `owner`: the signature no
/// longer matches the named key.
pub fn impersonate(bytes: &[u8], owner: &PublicKey) -> Option<Vec<u8>> {
    let mut v: ciborium::Value = ciborium::from_reader(bytes).ok()?;
    let ciborium::Value::Map(entries) = &mut v else {
        return None;
    };
    for (k, val) in entries.iter_mut() {
        if k.as_text() == Some("signer") {
            *val = ciborium::Value::serialized(owner).ok()?;
        }
    }
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::envelope::EnvelopeError;

    #[test]
    fn an_impersonated_record_fails_its_signature_check() {
        let adversary = Keypair::from_seed([1; 32]);
        let owner = Keypair::from_seed([2; 32]).public();
        let rec = SignedRecord::sign(
            &adversary,
            Record {
                format: RECORD_FORMAT,
                network: None,
                log: "acme:router".into(),
                seq: 0,
                prev: None,
                time_ms: FORGED_TIME_MS,
                body: Body::PackageInit {
                    kind: PackageKind::Component,
                },
            },
        );
        let forged = impersonate(&rec.bytes, &owner);
        assert!(forged.as_ref().is_some_and(|f| f != &rec.bytes));
        let err = forged.map(|f| SignedRecord::decode(&f));
        assert!(
            matches!(err, Some(Err(EnvelopeError::BadSignature { signer, .. })) if signer == owner),
            "{err:?}"
        );
    }
}

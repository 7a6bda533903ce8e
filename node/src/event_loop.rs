//! The one task that owns the Swarm.
//!
//! It turns network events into calls of protocol logic (through the index) and
//! commands from the API into network actions. Nothing else touches the Swarm. Work
//! that could block for long (component checks, hashing whole files) happens before a
//! command reaches the loop.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::log::Rejection;
use ferry_protocol::pin::Pins;
use ferry_protocol::record::OPERATOR_LOG;
use ferry_protocol::{ContentId, Keypair, Namespace, NetworkId};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, kad, request_response};
use tokio::sync::mpsc;

use crate::blob_store::BlobStore;
use crate::command::{Command, PeerInfo};
use crate::index::{Applied, Effect, Index, IngestError};
use crate::node::{Shared, now_ms};
use crate::swarm::{self, Behaviour, BehaviourEvent, DialPolicy};

mod assets;
mod fetch;
pub use fetch::DEFAULT_STALL_TIMEOUT;
mod gc;
mod peers;
pub use peers::{CONNECTION_GRACE, PEERS_HIGH_WATER, PEERS_LOW_WATER};
mod pins;
pub use pins::{MAX_PIN_FETCHES, MAX_PIN_QUEUE};
mod probe;
pub use probe::{Probe, QueueDepths};
mod publish;
mod serve;
mod sync;

use fetch::Download;
use sync::SyncState;

/// How often a node compares log heads with its peers.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(5);
/// Peers asked for their heads in each periodic round. Asking every connected peer made
/// each round's work grow with the number of connections, and the network's with its
/// square (a simulation of 100 nodes, where the DHT connects nearly everyone, spent most
/// of its time answering heads requests). Taking peers in turn still reaches each one
/// within a few rounds, and new connections and gossip that shows we are behind sync at
/// once.
pub const SYNC_PEERS_PER_TICK: usize = 8;
/// Most record requests (by position or by id) in flight to one peer; heads requests
/// go one at a time besides. A peer advertising thousands of logs must not make us open
/// thousands of requests, each of whose answers may be 9 MiB: the rest wait in a
/// bounded queue and go out as answers come back.
pub const MAX_SYNC_REQUESTS_PER_PEER: usize = 8;
/// Most gossiped records held for a second look.
pub const MAX_DEFERRED: usize = 256;
/// How often stalled downloads look for providers again.
const FETCH_TICK: Duration = Duration::from_secs(1);

/// The event loop's state.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    index: Arc<Index>,
    blobs: Arc<BlobStore>,
    shared: Arc<Shared>,
    key: Keypair,
    network: NetworkId,
    policy: DialPolicy,
    bootstrap: Vec<Multiaddr>,
    /// Connected peers, with when each connected or last carried a sync or blob
    /// request either way (what connection trimming goes by).
    connected: HashMap<PeerId, Instant>,
    sync: SyncState,
    downloads: HashMap<ContentId, Download>,
    blob_requests: HashMap<request_response::OutboundRequestId, (ContentId, PeerId, u64)>,
    provider_queries: HashMap<kad::QueryId, ContentId>,
    finishing: fetch::Finishing,
    /// How long a download may make no progress before it is given up.
    stall_timeout: Duration,
    /// Gossiped records we could not validate yet: (sender, when, bytes).
    deferred: VecDeque<(PeerId, std::time::Instant, Vec<u8>)>,
    /// Contents deleted by the operator, never served.
    deleted: HashSet<ContentId>,
    finished_tx: mpsc::Sender<(ContentId, Result<ContentId, String>)>,
    finished_rx: mpsc::Receiver<(ContentId, Result<ContentId, String>)>,
    listen_addrs: Vec<Multiaddr>,
    /// This node's pins (a copy of the index's, kept in step by the pin commands).
    pins: Pins,
    /// Namespaces whose gossip topic we are subscribed to.
    subscribed: BTreeSet<Namespace>,
    /// Pinned downloads: queue, running, retries.
    pinned: pins::PinState,
    /// Bytes the blob store may take before the node collects on its own.
    disk_budget: Option<u64>,
    /// The node's mirrors: blobs they hold are held here too.
    mirrors: Option<Arc<crate::mirror::Mirrors>>,
    /// Blobs this network's releases name: the only ones provided and served here (the
    /// blob store may hold blobs of a mirrored network too).
    named: HashSet<ContentId>,
    /// Something was stored since the last budget check.
    gc_due: bool,
    /// When a node with a disk budget next checks its store even if nothing was stored.
    next_budget_check: std::time::Instant,
    listeners: HashSet<libp2p::core::transport::ListenerId>,
    probe: Option<Arc<dyn Probe>>,
    /// A DHT bootstrap ran after the first connection to a bootstrap peer. Later
    /// reconnections (idle timeouts, restarts of the peer) leave it to kad's own
    /// automatic and periodic bootstraps: one walk per reconnection made the DHT the
    /// largest CPU cost of a 100-node simulation.
    kad_bootstrapped: bool,
    /// Chunk requests of peers being answered.
    serving: serve::Serving,
    /// Chunks being checked and written off the loop.
    writes: fetch::Writes,
}

/// What the loop needs to start.
pub struct LoopConfig {
    /// The built swarm.
    pub swarm: Swarm<Behaviour>,
    /// Commands from the API.
    pub commands: mpsc::Receiver<Command>,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// The publisher key.
    pub key: Keypair,
    /// Addresses to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// Which addresses may be dialed.
    pub policy: DialPolicy,
    /// How long a download may make no progress before it is given up.
    pub fetch_timeout: Duration,
    /// Bytes the blob store may take before the node collects garbage on its own.
    pub disk_budget: Option<u64>,
    /// Who watches the loop (simulations); `None` for the daemon.
    pub probe: Option<Arc<dyn Probe>>,
    /// The node's mirrors, which share its blob store: what they hold is never
    /// collected here. `None` in a mirror's own loop.
    pub mirrors: Option<Arc<crate::mirror::Mirrors>>,
    /// Most bytes per second served to peers (`None`: no limit).
    pub max_upload_rate: Option<u64>,
}

impl EventLoop {
    /// Prepares the loop: subscribes to topics, dials bootstrap peers, announces stored
    /// blobs and resumes interrupted downloads.
    pub fn new(cfg: LoopConfig) -> Self {
        let network = cfg.shared.index.network();
        let (finished_tx, finished_rx) = mpsc::channel(64);
        let pins = cfg.shared.index.pins().unwrap_or_else(|e| {
            tracing::error!(target: "ferry::index", "reading pins: {e}");
            Pins::default()
        });
        let named = cfg.shared.index.named_blobs().unwrap_or_else(|e| {
            tracing::error!(target: "ferry::index", "reading release blobs: {e}");
            HashSet::new()
        });
        let mut this = Self {
            index: cfg.shared.index.clone(),
            blobs: cfg.shared.blobs.clone(),
            swarm: cfg.swarm,
            commands: cfg.commands,
            shared: cfg.shared,
            key: cfg.key,
            network,
            policy: cfg.policy,
            bootstrap: cfg.bootstrap,
            connected: HashMap::new(),
            sync: SyncState::default(),
            downloads: HashMap::new(),
            blob_requests: HashMap::new(),
            provider_queries: HashMap::new(),
            finishing: HashMap::new(),
            deleted: HashSet::new(),
            stall_timeout: cfg.fetch_timeout,
            deferred: VecDeque::new(),
            finished_tx,
            finished_rx,
            listen_addrs: Vec::new(),
            pins,
            subscribed: BTreeSet::new(),
            pinned: pins::PinState::new(),
            disk_budget: cfg.disk_budget,
            mirrors: cfg.mirrors,
            named,
            gc_due: cfg.disk_budget.is_some(),
            next_budget_check: Instant::now(),
            listeners: HashSet::new(),
            probe: cfg.probe,
            kad_bootstrapped: false,
            serving: serve::Serving::new(cfg.max_upload_rate),
            writes: Default::default(),
        };
        let op = swarm::operator_topic(&network);
        if let Err(e) = this.swarm.behaviour_mut().gossipsub.subscribe(&op) {
            tracing::warn!(target: "ferry::gossip", "subscribing to {op}: {e}");
        }
        this.update_subscriptions();
        for addr in this.bootstrap.clone() {
            this.dial(addr);
        }
        this.name_stored_assets();
        for id in this.blobs.list() {
            // A tombstone may have been applied while the blob was being written.
            if this.deletion_reason(&id).is_some() {
                this.deleted.insert(id);
                this.forget_blob(&id);
            } else if this.named.contains(&id) {
                this.provide(&id);
            }
        }
        this.resume_downloads();
        this.rescan_pins();
        this
    }

    fn dial(&mut self, addr: Multiaddr) {
        if !self.policy.allows(&addr) {
            tracing::warn!(target: "ferry::net", %addr, "not dialing: outside the dial policy");
            return;
        }
        if let Some(peer) = swarm::peer_of(&addr) {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, addr.clone());
        }
        if let Err(e) = self.swarm.dial(addr.clone()) {
            tracing::warn!(target: "ferry::net", %addr, "dial failed: {e}");
        }
    }

    /// Reconnects to bootstrap peers we lost (restarts, idle timeouts), so a node
    /// never ends up alone while its bootstrap peers are reachable.
    fn redial_bootstrap(&mut self) {
        for addr in self.bootstrap.clone() {
            let connected = swarm::peer_of(&addr).is_some_and(|p| self.connected.contains_key(&p));
            if !connected && self.policy.allows(&addr) {
                let _ = self.swarm.dial(addr);
            }
        }
    }

    fn provide(&mut self, id: &ContentId) {
        let key = swarm::blob_key(&self.network, id);
        if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
            tracing::warn!(target: "ferry::dht", %id, "cannot provide: {e}");
        }
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut sync_tick = tokio::time::interval(SYNC_INTERVAL);
        let mut fetch_tick = tokio::time::interval(FETCH_TICK);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = self.commands.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                _ = sync_tick.tick() => {
                    self.redial_bootstrap();
                    let _ = self.trim_connections();
                    self.sync_round();
                    self.recheck_deferred();
                }
                _ = fetch_tick.tick() => {
                    self.fetch_tick();
                    self.pins_tick();
                    self.budget_tick();
                    self.probe_queues();
                }
                Some((id, ok)) = self.pinned.done_rx.recv() => self.on_pin_done(id, ok),
                Some((id, res)) = self.finished_rx.recv() => self.on_finished(id, res),
                Some(served) = self.serving.rx.recv() => self.on_served(served),
                Some(written) = self.writes.rx.recv() => self.on_written(written),
            }
        }
        // Closing listeners explicitly frees their addresses at once: the memory
        // transport keeps a port taken until its listener is removed, and a node
        // restarted in the same process must be able to listen there again.
        for id in std::mem::take(&mut self.listeners) {
            self.swarm.remove_listener(id);
        }
        tracing::info!(target: "ferry::node", "event loop stopped");
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { draft, reply } => {
                let _ = reply.send(self.publish(*draft));
            }
            Command::DefineNamespace {
                namespace,
                owners,
                reply,
            } => {
                let _ = reply.send(self.define_namespace(namespace, owners));
            }
            Command::Append { log, body, reply } => {
                let _ = reply.send(self.append(log, *body));
            }
            Command::Submit { record, reply } => {
                let _ = reply.send(self.submit(*record));
            }
            Command::Fetch { entry, reply } => {
                // The user asked for it: a cache hold from now on, recorded before the
                // blob can be stored so that no collection can slip in between.
                if let Err(e) = self.index.touch_cache(&entry.content, now_ms()) {
                    tracing::error!(target: "ferry::index", "{e}");
                }
                self.start_fetch(*entry, reply)
            }
            Command::AddPin { pin, reply } => {
                let _ = reply.send(self.add_pin(*pin));
            }
            Command::RemovePin { pattern, reply } => {
                let _ = reply.send(self.remove_pin(&pattern));
            }
            Command::Gc { dry_run, reply } => {
                let _ = reply.send(self.collect(dry_run));
            }
            Command::ClearCache { reply } => {
                let _ = reply.send(self.clear_cache());
            }
            Command::Imported { effects, blobs } => {
                for e in effects {
                    self.on_effect(e);
                }
                for id in blobs {
                    if self.named.contains(&id) && self.deletion_reason(&id).is_none() {
                        self.provide(&id);
                    }
                }
            }
            Command::NameAssets { files } => self.name_assets(files),
            Command::Peers { reply } => {
                let _ = reply.send(
                    self.connected
                        .keys()
                        .map(|p| PeerInfo {
                            peer_id: p.to_string(),
                            score: self.swarm.behaviour().gossipsub.peer_score(p),
                        })
                        .collect(),
                );
            }
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                self.listeners.insert(listener_id);
                let full = swarm::with_peer(&address, self.swarm.local_peer_id());
                tracing::info!(target: "ferry::net", "listening on {full}");
                self.listen_addrs.push(full);
                self.shared.write_node_info(&self.listen_addrs);
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => self.on_connected(peer_id),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
                self.sync.forget_peer(&peer_id);
            }
            SwarmEvent::Behaviour(b) => self.on_behaviour(b),
            _ => {}
        }
    }

    fn on_connected(&mut self, peer_id: PeerId) {
        if self.connected.insert(peer_id, Instant::now()).is_some() {
            return;
        }
        tracing::debug!(target: "ferry::net", %peer_id, "connected");
        self.sync_with(peer_id);
        if !self.kad_bootstrapped
            && self
                .bootstrap
                .iter()
                .any(|a| swarm::peer_of(a) == Some(peer_id))
        {
            self.kad_bootstrapped = self.swarm.behaviour_mut().kad.bootstrap().is_ok();
        }
    }

    fn on_behaviour(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let kad_proto = libp2p::StreamProtocol::new(swarm::KAD_PROTOCOL);
                if info.protocols.contains(&kad_proto) {
                    for addr in info.listen_addrs {
                        // Never learn an address we would not dial: a peer (or a DHT
                        // neighbour) must not be able to steer us elsewhere.
                        if self.policy.allows(&addr) {
                            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                    }
                }
            }
            BehaviourEvent::Sync(ev) => {
                self.used(&ev);
                self.on_sync_event(ev)
            }
            BehaviourEvent::Blob(ev) => {
                self.used(&ev);
                self.on_blob_event(ev)
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(res),
                ..
            }) => self.on_providers(id, res),
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, msg: gossipsub::Message) {
        use gossipsub::MessageAcceptance as A;
        // A record of a log our pins do not follow (a namespace topic is shared by
        // followed and unfollowed packages): not ours to check or keep.
        if let Ok(rec) = ferry_protocol::SignedRecord::decode(&msg.data)
            && self.unfollowed(&rec.record.log)
        {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, A::Ignore);
            return;
        }
        let acceptance = match self.ingest_bytes(&msg.data) {
            Ok(true) => A::Accept,
            Ok(false) => A::Ignore,
            Err(benign) => {
                if benign {
                    // We are behind (or raced the operator log): sync from the sender,
                    // and look at the record again once we have caught up.
                    self.sync_with(source);
                    if self.deferred.len() >= MAX_DEFERRED {
                        self.deferred.pop_front();
                    }
                    self.deferred.push_back((source, Instant::now(), msg.data));
                    A::Ignore
                } else {
                    self.penalize(&source);
                    A::Reject
                }
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }

    /// Re-checks records that gossip delivered before we could validate them. A peer
    /// only forwards what it validated, so it holds everything the record depends on;
    /// once we have synced with it, a record that still lacks its namespace or its
    /// predecessors was never valid, and its sender pays for it.
    fn recheck_deferred(&mut self) {
        let grace = SYNC_INTERVAL * 2;
        while let Some((peer, at, _)) = self.deferred.front() {
            if at.elapsed() < grace {
                break;
            }
            let (peer, bytes) = (
                *peer,
                self.deferred.pop_front().map(|d| d.2).unwrap_or_default(),
            );
            let Ok(rec) = ferry_protocol::SignedRecord::decode(&bytes) else {
                continue;
            };
            match self.index.ingest(&rec, now_ms()) {
                Ok(Applied::New { effect, .. }) => self.on_effect(effect),
                Err(IngestError::Rejected(
                    Rejection::NamespaceNotDefined(_)
                    | Rejection::Gap { .. }
                    | Rejection::UnknownRelease(_),
                )) => {
                    tracing::info!(target: "ferry::gossip", %peer, id = %rec.id, "peer forwarded a record that never became valid");
                    self.penalize(&peer);
                }
                _ => {}
            }
        }
    }

    /// Acts on what a new record means beyond the index.
    pub(super) fn on_effect(&mut self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Namespace(_) => self.update_subscriptions(),
            Effect::Release(r) => {
                self.named.extend(crate::index::blobs_of(&r));
                self.shared.note_release(&r);
                self.on_release_for_pins(&r);
                self.probe_release(&r);
            }
            Effect::Deleted {
                tombstone,
                contents,
            } => {
                tracing::warn!(target: "ferry::log", target_deleted = %tombstone.target, reason = %tombstone.reason, "operator deletion");
                self.deleted.extend(contents.iter().copied());
                for id in contents {
                    self.forget_blob(&id);
                }
            }
        }
    }

    /// Stops serving, providing and downloading a blob, and removes it from disk.
    fn forget_blob(&mut self, id: &ContentId) {
        let key = swarm::blob_key(&self.network, id);
        self.swarm.behaviour_mut().kad.stop_providing(&key);
        self.cancel_download(id);
        match self.blobs.remove(id) {
            Ok(true) => tracing::info!(target: "ferry::blobs", %id, "removed deleted blob"),
            Ok(false) => {}
            Err(e) => tracing::error!(target: "ferry::blobs", %id, "removing deleted blob: {e}"),
        }
    }

    fn penalize(&mut self, peer: &PeerId) {
        let score = self.sync.penalties.entry(*peer).or_default();
        *score -= 10.0;
        let s = *score;
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(peer, s);
    }

    /// Decodes and ingests one record. `Ok(true)` if it was new, `Ok(false)` if known;
    /// `Err(benign)` if refused, where `benign` says whether the sender is blameless.
    fn ingest_bytes(&mut self, bytes: &[u8]) -> Result<bool, bool> {
        self.ingest_many(&[bytes]).pop().unwrap_or(Err(true))
    }

    /// Ingests consecutive records (a sync page) in one transaction, in order, and
    /// stops at the first refusal: later records of the same log could not apply.
    /// Returns one outcome per record processed, as [`Self::ingest_bytes`] does.
    pub(super) fn ingest_many(&mut self, pages: &[&[u8]]) -> Vec<Result<bool, bool>> {
        let mut recs = Vec::with_capacity(pages.len());
        let mut decode_err = false;
        for bytes in pages {
            match ferry_protocol::SignedRecord::decode(bytes) {
                Ok(r) => recs.push(r),
                Err(e) => {
                    tracing::info!(target: "ferry::log", "refused record: {e}");
                    decode_err = true;
                    break;
                }
            }
        }
        let results = match self.index.ingest_batch(&recs, now_ms()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(target: "ferry::index", "{e}");
                return vec![Err(true)];
            }
        };
        let mut out = Vec::with_capacity(results.len() + 1);
        for (rec, res) in recs.iter().zip(results) {
            match res {
                Ok(Applied::Duplicate) => out.push(Ok(false)),
                Ok(Applied::New { log, seq, effect }) => {
                    tracing::info!(target: "ferry::log", %log, seq, id = %rec.id, "applied {}", rec.record.body.kind());
                    self.on_effect(effect);
                    if log == OPERATOR_LOG {
                        self.sync.operator_advanced = true;
                    }
                    out.push(Ok(true));
                }
                Ok(Applied::Forked { log, seq }) => {
                    // Valid but conflicting: kept as evidence, and forwarded so that
                    // every node learns of the equivocation.
                    tracing::warn!(target: "ferry::log", %log, seq, id = %rec.id, "conflicting record: log is forked");
                    out.push(Ok(true));
                }
                Err(r) => {
                    tracing::info!(target: "ferry::log", log = %rec.record.log, seq = rec.record.seq, "refused record: {r}");
                    out.push(Err(r.is_benign()));
                    break;
                }
            }
        }
        if decode_err && out.len() == recs.len() {
            out.push(Err(false));
        }
        out
    }
}

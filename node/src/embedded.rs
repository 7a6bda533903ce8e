//! In-process nodes: the real event loop, index and blob store, without the HTTP API,
//! over libp2p's memory transport. Simulations run hundreds of them in one runtime;
//! the daemon path ([`crate::run`]) does not use this.
//!
//! Each node counts the bytes its connections carry ([`Traffic`]) and keeps gossipsub's
//! metrics ([`GossipCounts`]); a shared [`Gate`] can partition nodes from each other.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_protocol::PublicKey;
use ferry_protocol::pin::Pin;
use libp2p::metrics::Registry;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Swarm, identity};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::blob_store::BlobStore;
use crate::command::NodeHandle;
use crate::data_dir::DataDir;
use crate::event_loop::{EventLoop, LoopConfig, Probe};
use crate::index::Index;
use crate::node::{NodeError, Shared, node_identity, open_index};
use crate::swarm::{self, Behaviour, DialPolicy, SwarmError};

mod gate;
mod transport;

pub use gate::Gate;
pub use transport::Traffic;

/// How to start an in-process node.
pub struct EmbeddedConfig {
    /// An initialized data directory (see [`crate::init_join`]).
    pub data_dir: PathBuf,
    /// The memory-transport port to listen on (`/memory/<port>`), unique in the process
    /// and non-zero. A restarted node should reuse its port so peers find it again.
    pub memory_port: u64,
    /// Peers to dial at start (and redial when lost).
    pub bootstrap: Vec<Multiaddr>,
    /// How long a download may make no progress before fetches of it fail.
    pub fetch_timeout: Duration,
    /// The partition gate shared by the nodes of a simulation.
    pub gate: Option<Arc<Gate>>,
    /// Who watches the event loop.
    pub probe: Option<Arc<dyn Probe>>,
    /// Bytes the blob store may take before the node collects garbage on its own.
    pub disk_budget: Option<u64>,
    /// Pins to add before the loop starts (kept in the index, as `ferry pin add` does;
    /// adding one that is there already changes nothing).
    pub pins: Vec<Pin>,
}

impl EmbeddedConfig {
    /// A node in `data_dir` on `/memory/<memory_port>`, with no peers, gate or probe.
    pub fn new(data_dir: impl Into<PathBuf>, memory_port: u64) -> Self {
        Self {
            data_dir: data_dir.into(),
            memory_port,
            bootstrap: Vec::new(),
            fetch_timeout: crate::event_loop::DEFAULT_STALL_TIMEOUT,
            gate: None,
            probe: None,
            disk_budget: None,
            pins: Vec::new(),
        }
    }
}

/// Gossipsub's view of one node's traffic, summed over topics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipCounts {
    /// Messages received, duplicates included.
    pub received: u64,
    /// Messages received for the first time.
    pub first_seen: u64,
    /// Messages this node published itself.
    pub published: u64,
    /// Messages the node validated and accepted (so forwarded).
    pub accepted: u64,
    /// Messages the node refused as invalid (their senders are penalized).
    pub rejected: u64,
    /// Messages neither accepted nor rejected (known already, or not yet checkable).
    pub ignored: u64,
}

impl GossipCounts {
    /// Copies of messages that arrived again after the first.
    pub fn duplicates(&self) -> u64 {
        self.received.saturating_sub(self.first_seen)
    }
}

/// A running in-process node.
pub struct EmbeddedNode {
    handle: NodeHandle,
    index: Arc<Index>,
    blobs: Arc<BlobStore>,
    peer_id: PeerId,
    addr: Multiaddr,
    publisher: PublicKey,
    traffic: Arc<Traffic>,
    metrics: Mutex<Registry>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl EmbeddedNode {
    /// Opens the data directory and starts the node's event loop on the current tokio
    /// runtime.
    pub fn start(cfg: EmbeddedConfig) -> Result<Self, NodeError> {
        let dir = DataDir::open(&cfg.data_dir)?;
        let membership = dir.membership()?;
        let key = dir.publisher_key()?;
        let node_key = node_identity(&dir)?;
        let index = open_index(&dir, &membership)?;
        let blobs = BlobStore::open(dir.path("blobs"))?;
        for pin in &cfg.pins {
            index
                .put_pin(pin, crate::node::now_ms())
                .map_err(|source| NodeError::Index {
                    path: dir.path("index.redb"),
                    source,
                })?;
        }
        index
            .seed_holds(&blobs.list(), &key.public(), crate::node::now_ms())
            .map_err(|source| NodeError::Index {
                path: dir.path("index.redb"),
                source,
            })?;
        let peer_id = node_key.public().to_peer_id();
        let traffic = Arc::new(Traffic::default());
        let mut registry = Registry::default();
        let mut swarm = build_swarm(
            node_key,
            traffic.clone(),
            cfg.gate.clone(),
            Some(&mut registry),
        )?;
        let listen = Multiaddr::empty().with(Protocol::Memory(cfg.memory_port));
        swarm
            .listen_on(listen.clone())
            .map_err(|e| NodeError::Listen {
                addr: listen.clone(),
                // The transport's own error is the source; its display is empty.
                why: std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string()),
            })?;
        let shared = Arc::new(Shared::new(
            Arc::new(index),
            Arc::new(blobs),
            dir,
            String::new(),
            peer_id.to_string(),
            String::new(),
            key.public(),
        ));
        let (handle, commands) = NodeHandle::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let event_loop = EventLoop::new(LoopConfig {
            swarm,
            commands,
            shared: shared.clone(),
            key: key.clone(),
            bootstrap: cfg.bootstrap,
            policy: DialPolicy::MemoryOnly,
            fetch_timeout: cfg.fetch_timeout,
            disk_budget: cfg.disk_budget,
            probe: cfg.probe,
            mirrors: None,
            max_upload_rate: None,
        });
        // Every log line of this node's loop names the node: many share one process.
        let span = tracing::info_span!("node", peer = %peer_id);
        let task = tokio::spawn(tracing::Instrument::instrument(
            event_loop.run(async {
                let _ = stopped.await;
            }),
            span,
        ));
        Ok(Self {
            handle,
            index: shared.index.clone(),
            blobs: shared.blobs.clone(),
            peer_id,
            addr: swarm::with_peer(&listen, &peer_id),
            publisher: key.public(),
            traffic,
            metrics: Mutex::new(registry),
            stop,
            task,
        })
    }

    /// The handle to send commands to the event loop.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// The node's index.
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The node's blob store.
    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.blobs
    }

    /// The node's libp2p identity.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The address other nodes dial: `/memory/<port>/p2p/<peer>`.
    pub fn addr(&self) -> &Multiaddr {
        &self.addr
    }

    /// The key this node signs records with.
    pub fn publisher(&self) -> PublicKey {
        self.publisher
    }

    /// Bytes this node's connections carried since it started.
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    /// Gossipsub's message counts since the node started.
    pub fn gossip(&self) -> GossipCounts {
        let mut text = String::new();
        if let Ok(r) = self.metrics.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut text, &r);
        }
        gossip_counts(&text)
    }

    /// Stops the event loop and waits until it has released the index and the blob
    /// store, so the same data directory can be started again.
    pub async fn shutdown(self) {
        let Self {
            stop, task, index, ..
        } = self;
        drop(index);
        let _ = stop.send(());
        let _ = task.await;
    }
}

/// A bare swarm with every Ferry behaviour over the counted, gated memory transport:
/// what [`EmbeddedNode`] runs, and what a simulation's adversary drives by hand.
pub fn build_swarm(
    key: identity::Keypair,
    traffic: Arc<Traffic>,
    gate: Option<Arc<Gate>>,
    metrics: Option<&mut Registry>,
) -> Result<Swarm<Behaviour>, SwarmError> {
    swarm::assemble(key, move |k| transport::memory(k, traffic, gate), metrics)
}

/// Sums gossipsub's per-topic counters in Prometheus text.
fn gossip_counts(text: &str) -> GossipCounts {
    let mut c = GossipCounts::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let slot = match name {
            "topic_msg_recv_counts_unfiltered_total" => &mut c.received,
            "topic_msg_recv_counts_total" => &mut c.first_seen,
            "topic_msg_published_total" => &mut c.published,
            "accepted_messages_per_topic_total" => &mut c.accepted,
            "rejected_messages_per_topic_total" => &mut c.rejected,
            "ignored_messages_per_topic_total" => &mut c.ignored,
            _ => continue,
        };
        *slot += value as u64;
    }
    c
}

#[cfg(test)]
mod tests;

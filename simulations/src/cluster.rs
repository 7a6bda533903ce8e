//! The honest nodes of a run: data directories, starting, stopping and restarting them
//! (data kept), and looking at what each one holds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_node::data_dir::{DataDir, Membership};
use ferry_node::embedded::{EmbeddedConfig, EmbeddedNode, Gate};
use ferry_node::libp2p::multiaddr::Protocol;
use ferry_node::libp2p::{PeerId, identity};
use ferry_node::{Multiaddr, NodeError};
use ferry_protocol::filter::Pattern;
use ferry_protocol::pin::Pin;
use ferry_protocol::record::{Body, OPERATOR_LOG, RECORD_FORMAT, Record};
use ferry_protocol::{Keypair, Namespace, NetworkId, SignedRecord};
use serde_bytes::ByteBuf;

use crate::observe::Observations;
use crate::scenario::{NodePlan, Plan};

/// The claimed time of the genesis record: fixed, so a seed names one network id.
const GENESIS_TIME_MS: u64 = 1_780_000_000_000;
/// How long a download may stall before it is given up (pinned ones are retried).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Memory-transport ports handed out in this process; never reused by another node.
static NEXT_PORT: AtomicU64 = AtomicU64::new(30_000);

/// A fresh memory-transport port.
pub fn port() -> u64 {
    NEXT_PORT.fetch_add(1, Ordering::Relaxed)
}

/// Why the cluster could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A node's data directory could not be prepared.
    #[error("preparing {path}: {why}")]
    Prepare {
        /// The directory.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// A node would not start.
    #[error("starting node {node}: {source}")]
    Start {
        /// Node index.
        node: usize,
        /// Why.
        source: NodeError,
    },
}

/// One honest node: its plan, where it lives, and (while up) the running node.
pub struct SimNode {
    /// Index in the plan.
    pub idx: usize,
    dir: PathBuf,
    port: u64,
    /// Its libp2p identity (fixed by the plan, the same across restarts).
    pub peer: PeerId,
    /// Namespaces it pins.
    pub pins: BTreeSet<Namespace>,
    running: Option<Running>,
}

struct Running {
    node: EmbeddedNode,
}

impl SimNode {
    /// The running node, if up.
    pub fn node(&self) -> Option<&EmbeddedNode> {
        self.running.as_ref().map(|r| &r.node)
    }

    /// Its pins: one `namespace:*` pattern per pinned namespace.
    fn pin_list(&self) -> Vec<Pin> {
        self.pins
            .iter()
            .filter_map(|ns| format!("{ns}:*").parse::<Pattern>().ok())
            .map(Pin::new)
            .collect()
    }

    /// Whether the node is up.
    pub fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// Its dial address (valid across restarts: the port is kept).
    pub fn addr(&self) -> Multiaddr {
        ferry_node::swarm::with_peer(
            &Multiaddr::empty().with(Protocol::Memory(self.port)),
            &self.peer,
        )
    }

    /// Starts the node (again) with its data directory as it was left.
    pub fn start(
        &mut self,
        bootstrap: Vec<Multiaddr>,
        gate: &Arc<Gate>,
        obs: &Arc<Observations>,
    ) -> Result<(), ClusterError> {
        if self.running.is_some() {
            return Ok(());
        }
        let mut cfg = EmbeddedConfig::new(&self.dir, self.port);
        cfg.bootstrap = bootstrap;
        cfg.fetch_timeout = FETCH_TIMEOUT;
        cfg.gate = Some(gate.clone());
        cfg.probe = Some(obs.probe(self.idx));
        cfg.pins = self.pin_list();
        let node = EmbeddedNode::start(cfg).map_err(|source| ClusterError::Start {
            node: self.idx,
            source,
        })?;
        self.running = Some(Running { node });
        Ok(())
    }

    /// Stops the node and waits until its files are released.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.node.shutdown().await;
        }
    }
}

/// Writes the data directory of node `plan` under `root`: its seeded keys, and either
/// the genesis (operator) or the network id to join.
pub fn prepare(
    root: &Path,
    idx: usize,
    plan: &NodePlan,
    genesis: Option<&SignedRecord>,
    network: NetworkId,
) -> Result<PathBuf, ClusterError> {
    let path = root.join(format!("node-{idx:04}"));
    let fail = |why: String| ClusterError::Prepare {
        path: path.clone(),
        why,
    };
    let dir = DataDir::open(&path).map_err(|e| fail(e.to_string()))?;
    dir.seed_or_create("node.key", plan.node_seed)
        .map_err(|e| fail(e.to_string()))?;
    dir.seed_or_create("publisher.key", plan.publisher_seed)
        .map_err(|e| fail(e.to_string()))?;
    dir.set_membership(&Membership {
        network,
        genesis: genesis.map(|g| hex::encode(&g.bytes)),
    })
    .map_err(|e| fail(e.to_string()))?;
    Ok(path)
}

/// The genesis record of the plan's network, signed by the operator's key.
pub fn genesis(plan: &Plan) -> SignedRecord {
    let key = Keypair::from_seed(plan.nodes[0].publisher_seed);
    SignedRecord::sign(
        &key,
        Record {
            format: RECORD_FORMAT,
            network: None,
            log: OPERATOR_LOG.into(),
            seq: 0,
            prev: None,
            time_ms: GENESIS_TIME_MS,
            body: Body::OperatorInit {
                operators: vec![key.public()],
                nonce: ByteBuf::from(plan.genesis_nonce.to_vec()),
            },
        },
    )
}

/// A node of the plan, prepared but not started.
pub fn sim_node(
    root: &Path,
    plan: &Plan,
    idx: usize,
    genesis: &SignedRecord,
) -> Result<SimNode, ClusterError> {
    let np = &plan.nodes[idx];
    let dir = prepare(root, idx, np, (idx == 0).then_some(genesis), genesis.id)?;
    let peer = identity::Keypair::ed25519_from_bytes(np.node_seed)
        .map_err(|e| ClusterError::Prepare {
            path: dir.clone(),
            why: format!("node key: {e}"),
        })?
        .public()
        .to_peer_id();
    let pins = np
        .pins
        .iter()
        .filter_map(|n| plan.namespaces[*n].parse().ok())
        .collect();
    Ok(SimNode {
        idx,
        dir,
        port: port(),
        peer,
        pins,
        running: None,
    })
}

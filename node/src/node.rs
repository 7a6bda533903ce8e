//! Starting a node: open the data directory, index and blob store, build the swarm,
//! serve the local API, and run the event loop until shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_protocol::record::{Body, OPERATOR_LOG, RECORD_FORMAT, Record};
use ferry_protocol::{ContentId, Keypair, NetworkId, SignedRecord};
use libp2p::{Multiaddr, identity};
use serde_bytes::ByteBuf;

use crate::api;
use crate::blob_store::{BlobError, BlobStore};
use crate::command::NodeHandle;
use crate::data_dir::{DataDir, DataDirError, Membership, NodeInfo, random32};
use crate::event_loop::{EventLoop, LoopConfig};
use crate::index::{Index, IndexError, IngestError, ReleaseEntry};
use crate::swarm::{self, DialPolicy, SwarmError};

/// Milliseconds since the Unix epoch: the node's clock, passed into the pure core.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Errors starting or running a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Data directory problem.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// Index problem.
    #[error("{path}: {source}")]
    Index {
        /// The index file.
        path: std::path::PathBuf,
        /// The error.
        source: IndexError,
    },
    /// Blob store problem.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// Swarm problem.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// A listen address could not be used.
    #[error("cannot listen on {addr}: {why}")]
    Listen {
        /// Address.
        addr: Multiaddr,
        /// Why.
        why: String,
    },
    /// The API address could not be bound.
    #[error("cannot serve the API on {addr}: {source}")]
    Api {
        /// Address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The stored genesis record is invalid.
    #[error("the genesis record in network.json is invalid: {0}")]
    Genesis(String),
}

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Data directory.
    pub data_dir: std::path::PathBuf,
    /// libp2p listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Local API address.
    pub api: SocketAddr,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// How long a download may make no progress before fetches of it fail.
    pub fetch_timeout: std::time::Duration,
    /// Bytes the blob store may take before the node collects garbage and evicts
    /// least-recently-used cache entries on its own; `None` for no limit.
    pub disk_budget: Option<u64>,
    /// Most bytes per second served to peers (`None`: no limit).
    pub max_upload_rate: Option<u64>,
}

impl NodeConfig {
    /// Defaults for a local node: loopback TCP and QUIC on free ports, API on a free port.
    pub fn local(data_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".parse().expect("static multiaddr"),
                "/ip4/127.0.0.1/udp/0/quic-v1"
                    .parse()
                    .expect("static multiaddr"),
            ],
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap: Vec::new(),
            fetch_timeout: crate::event_loop::DEFAULT_STALL_TIMEOUT,
            disk_budget: None,
            max_upload_rate: None,
        }
    }
}

/// State shared between the event loop and the API.
#[derive(Debug)]
pub struct Shared {
    /// The index.
    pub index: Arc<Index>,
    /// The blob store.
    pub blobs: Arc<BlobStore>,
    /// The data directory.
    pub data_dir: DataDir,
    /// The API's bearer token.
    pub token: String,
    /// This node's peer id.
    pub peer_id: String,
    /// The API's base URL.
    pub api_url: String,
    /// The publisher key's public half.
    pub publisher: ferry_protocol::PublicKey,
    /// Blob bytes and chunks moved, cache hits, per-download figures.
    pub transfer: crate::transfer::Transfer,
    progress: Mutex<HashMap<ContentId, (u64, u64)>>,
    releases_applied: AtomicU64,
    /// Blobs the API is reading right now, with how many readers each: garbage
    /// collection takes the same lock and never removes one of them.
    serving: Mutex<HashMap<ContentId, usize>>,
}

/// While alive, marks a blob as being served: garbage collection leaves it alone.
#[derive(Debug)]
pub struct ServeGuard {
    shared: Arc<Shared>,
    id: ContentId,
}

impl Drop for ServeGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.shared.serving.lock()
            && let Some(n) = s.get_mut(&self.id)
        {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.id);
            }
        }
    }
}

impl Shared {
    /// State for a node whose API answers at `api_url`.
    pub fn new(
        index: Arc<Index>,
        blobs: Arc<BlobStore>,
        data_dir: DataDir,
        token: String,
        peer_id: String,
        api_url: String,
        publisher: ferry_protocol::PublicKey,
    ) -> Self {
        Self {
            index,
            blobs,
            data_dir,
            token,
            peer_id,
            api_url,
            publisher,
            transfer: Default::default(),
            progress: Mutex::new(HashMap::new()),
            releases_applied: AtomicU64::new(0),
            serving: Mutex::new(HashMap::new()),
        }
    }

    /// Rewrites `node.json` with the current listen addresses.
    pub fn write_node_info(&self, addrs: &[Multiaddr]) {
        let info = NodeInfo {
            peer_id: self.peer_id.clone(),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            api: self.api_url.clone(),
            pid: std::process::id(),
        };
        let json = serde_json::to_vec_pretty(&info).unwrap_or_default();
        if let Err(e) = self.data_dir.write_atomic("node.json", &json) {
            tracing::error!(target: "ferry::node", "writing node.json: {e}");
        }
    }

    /// Counts an applied release.
    pub fn note_release(&self, _entry: &ReleaseEntry) {
        self.releases_applied.fetch_add(1, Ordering::Relaxed);
    }

    /// Releases applied since start.
    pub fn releases_applied(&self) -> u64 {
        self.releases_applied.load(Ordering::Relaxed)
    }

    /// Records download progress.
    pub fn set_progress(&self, id: ContentId, done: u64, total: u64) {
        if let Ok(mut p) = self.progress.lock() {
            p.insert(id, (done, total));
        }
    }

    /// Forgets download progress.
    pub fn clear_progress(&self, id: &ContentId) {
        if let Ok(mut p) = self.progress.lock() {
            p.remove(id);
        }
    }

    /// Marks `id` as being served until the guard drops. Take it before opening the
    /// blob: then garbage collection either saw the mark or removed the file first,
    /// and the open fails cleanly.
    pub fn serving(self: &Arc<Self>, id: ContentId) -> ServeGuard {
        if let Ok(mut s) = self.serving.lock() {
            *s.entry(id).or_default() += 1;
        }
        ServeGuard {
            shared: self.clone(),
            id,
        }
    }

    /// Runs `remove` unless `id` is being served, holding the serving lock throughout
    /// so no reader can start in between. Returns `None` when it was being served.
    pub fn remove_unless_serving<T>(
        &self,
        id: &ContentId,
        remove: impl FnOnce() -> T,
    ) -> Option<T> {
        let s = self.serving.lock().ok()?;
        if s.contains_key(id) {
            return None;
        }
        let out = remove();
        drop(s);
        Some(out)
    }

    /// Blobs being served right now.
    pub fn served(&self) -> Vec<ContentId> {
        self.serving
            .lock()
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Download progress `(done, total)` bytes, if downloading.
    pub fn progress(&self, id: &ContentId) -> Option<(u64, u64)> {
        self.progress.lock().ok()?.get(id).copied()
    }
}

/// Creates this node's keys and a new network operated by its publisher key.
pub fn init_new_network(dir: &DataDir) -> Result<NetworkId, NodeError> {
    if let Ok(m) = dir.membership() {
        return Err(DataDirError::AlreadyInitialized(
            dir.root().to_path_buf(),
            m.network.to_string(),
        )
        .into());
    }
    let key = Keypair::from_seed(dir.seed_or_create("publisher.key", random32())?);
    dir.seed_or_create("node.key", random32())?;
    let genesis = SignedRecord::sign(
        &key,
        Record {
            format: RECORD_FORMAT,
            network: None,
            log: OPERATOR_LOG.into(),
            seq: 0,
            prev: None,
            time_ms: now_ms(),
            body: Body::OperatorInit {
                operators: vec![key.public()],
                nonce: ByteBuf::from(random32()[..16].to_vec()),
            },
        },
    );
    dir.set_membership(&Membership {
        network: genesis.id,
        genesis: Some(hex::encode(&genesis.bytes)),
    })?;
    Ok(genesis.id)
}

/// Creates this node's keys for joining `network`.
pub fn init_join(dir: &DataDir, network: NetworkId) -> Result<(), NodeError> {
    if let Ok(m) = dir.membership() {
        return Err(DataDirError::AlreadyInitialized(
            dir.root().to_path_buf(),
            m.network.to_string(),
        )
        .into());
    }
    dir.seed_or_create("publisher.key", random32())?;
    dir.seed_or_create("node.key", random32())?;
    dir.set_membership(&Membership {
        network,
        genesis: None,
    })?;
    Ok(())
}

/// The libp2p identity stored in the data directory (created on first use).
pub(crate) fn node_identity(dir: &DataDir) -> Result<identity::Keypair, NodeError> {
    let node_seed = dir.seed_or_create("node.key", random32())?;
    identity::Keypair::ed25519_from_bytes(node_seed)
        .map_err(|e| NodeError::Genesis(format!("node.key: {e}")))
}

/// Opens the index of the data directory's network, seeding it with the genesis record
/// when this node created the network.
pub(crate) fn open_index(dir: &DataDir, membership: &Membership) -> Result<Index, NodeError> {
    let index_path = dir.path("index.redb");
    let index =
        Index::open(&index_path, membership.network).map_err(|source| NodeError::Index {
            path: index_path.clone(),
            source,
        })?;
    if let Some(g) = &membership.genesis {
        let bytes = hex::decode(g).map_err(|e| NodeError::Genesis(e.to_string()))?;
        let rec = SignedRecord::decode(&bytes).map_err(|e| NodeError::Genesis(e.to_string()))?;
        match index.ingest(&rec, now_ms()) {
            Ok(_) => {}
            Err(IngestError::Index(source)) => {
                return Err(NodeError::Index {
                    path: index_path,
                    source,
                });
            }
            Err(e) => return Err(NodeError::Genesis(e.to_string())),
        }
    }
    Ok(index)
}

/// Runs a node until `shutdown` resolves.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let dir = DataDir::open(&cfg.data_dir)?;
    let membership = dir.membership()?;
    let key = dir.publisher_key()?;
    let node_key = node_identity(&dir)?;
    let index = open_index(&dir, &membership)?;
    let blobs = BlobStore::open(dir.path("blobs"))?;
    index
        .seed_holds(&blobs.list(), &key.public(), now_ms())
        .map_err(|source| NodeError::Index {
            path: dir.path("index.redb"),
            source,
        })?;
    let token = dir.api_token(random32())?;

    let policy = if cfg
        .listen
        .iter()
        .all(|a| DialPolicy::LoopbackOnly.allows(a))
    {
        DialPolicy::LoopbackOnly
    } else {
        DialPolicy::Any
    };
    let mut swarm = swarm::build(node_key, policy)?;
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Listen {
                addr: addr.clone(),
                why: e.to_string(),
            })?;
    }
    let listener = tokio::net::TcpListener::bind(cfg.api)
        .await
        .map_err(|source| NodeError::Api {
            addr: cfg.api,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| NodeError::Api {
        addr: cfg.api,
        source,
    })?;

    let shared = Arc::new(Shared::new(
        Arc::new(index),
        Arc::new(blobs),
        dir,
        token,
        swarm.local_peer_id().to_string(),
        format!("http://{api_addr}"),
        key.public(),
    ));
    let (handle, commands) = NodeHandle::channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mirrors = crate::mirror::Mirrors::start_all(crate::mirror::MirrorsContext {
        dir: shared.data_dir.clone(),
        blobs: shared.blobs.clone(),
        key: key.clone(),
        token: shared.token.clone(),
        api_url: shared.api_url.clone(),
        listen: cfg.listen.clone(),
        policy,
        fetch_timeout: cfg.fetch_timeout,
        max_upload_rate: cfg.max_upload_rate,
    });
    let api_task = tokio::spawn(api::serve(
        listener,
        shared.clone(),
        handle,
        mirrors.clone(),
        stop_rx,
    ));
    tracing::info!(target: "ferry::node", network = %membership.network, peer = %shared.peer_id, api = %shared.api_url, "node starting");
    let event_loop = EventLoop::new(LoopConfig {
        swarm,
        commands,
        shared: shared.clone(),
        key,
        bootstrap: cfg.bootstrap,
        policy,
        fetch_timeout: cfg.fetch_timeout,
        disk_budget: cfg.disk_budget,
        probe: None,
        mirrors: Some(mirrors.clone()),
        max_upload_rate: cfg.max_upload_rate,
    });
    event_loop.run(shutdown).await;
    mirrors.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = api_task.await;
    // node.json describes a running node only.
    let _ = std::fs::remove_file(shared.data_dir.path("node.json"));
    Ok(())
}

//! The running mirror instances of a node: started with the node, added and removed
//! while it runs, stopped with it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_protocol::{Keypair, NetworkId};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, identity};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{MirrorConfig, MirrorError, mirror_dir};
use crate::blob_store::BlobStore;
use crate::command::NodeHandle;
use crate::data_dir::{DataDir, random32};
use crate::event_loop::{EventLoop, LoopConfig};
use crate::index::Index;
use crate::node::Shared;
use crate::swarm::{self, DialPolicy};

/// What every mirror instance shares with the node that runs it.
#[derive(Debug, Clone)]
pub struct MirrorsContext {
    /// The node's data directory.
    pub dir: DataDir,
    /// The shared blob store.
    pub blobs: Arc<BlobStore>,
    /// The node's publisher key (a mirror never signs with it; the loop needs one).
    pub key: Keypair,
    /// The API token.
    pub token: String,
    /// The API's base URL.
    pub api_url: String,
    /// The node's listen addresses; each mirror listens on the same hosts, on ports of
    /// its own.
    pub listen: Vec<Multiaddr>,
    /// Which addresses may be dialed.
    pub policy: DialPolicy,
    /// How long a download may make no progress.
    pub fetch_timeout: Duration,
    /// Most bytes per second each mirror serves to its network's peers.
    pub max_upload_rate: Option<u64>,
}

/// A running mirror: its state and the handle to its event loop.
#[derive(Debug, Clone)]
pub struct Instance {
    /// What it follows.
    pub config: MirrorConfig,
    /// Its index, the shared blob store, its peer id.
    pub shared: Arc<Shared>,
    /// Its event loop.
    pub handle: NodeHandle,
}

struct Running {
    instance: Instance,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A mirror as `ferry mirror ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorStatus {
    /// What it follows.
    #[serde(flatten)]
    pub config: MirrorConfig,
    /// Whether its instance runs.
    pub running: bool,
    /// Why it does not run, if it failed to start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its peer id in the origin network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    /// Its listen addresses: other nodes of the origin network can bootstrap from them.
    pub addrs: Vec<String>,
    /// Connected peers of the origin network.
    pub peers: usize,
    /// Packages it indexed.
    pub packages: usize,
    /// Blobs of its releases stored here.
    pub blobs: usize,
}

/// The node's mirrors.
pub struct Mirrors {
    ctx: MirrorsContext,
    /// Serializes add and remove, which stop and start instances.
    ops: tokio::sync::Mutex<()>,
    running: Mutex<BTreeMap<NetworkId, Running>>,
    failed: Mutex<BTreeMap<NetworkId, String>>,
}

impl std::fmt::Debug for Mirrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirrors").finish_non_exhaustive()
    }
}

/// `addr` with its TCP or UDP port set to 0, so that the OS picks a free one.
fn any_port(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .map(|p| match p {
            Protocol::Tcp(_) => Protocol::Tcp(0),
            Protocol::Udp(_) => Protocol::Udp(0),
            p => p,
        })
        .collect()
}

fn start(ctx: &MirrorsContext, config: MirrorConfig) -> Result<Running, MirrorError> {
    let network = config.network;
    let fail = |why: String| MirrorError::Start { network, why };
    let mdir = DataDir::open(mirror_dir(&ctx.dir, &network))?;
    let seed = mdir.seed_or_create("node.key", random32())?;
    let node_key =
        identity::Keypair::ed25519_from_bytes(seed).map_err(|e| fail(format!("node.key: {e}")))?;
    let index_path = mdir.path("index.redb");
    let index = Index::open(&index_path, network)
        .map_err(|e| fail(format!("{}: {e}", index_path.display())))?;
    super::follow::apply_filter(&index, &config.filter, crate::node::now_ms())?;
    let mut swarm = swarm::build(node_key, ctx.policy).map_err(|e| fail(e.to_string()))?;
    for addr in ctx.listen.iter().map(any_port) {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| fail(format!("cannot listen on {addr}: {e}")))?;
    }
    let bootstrap = config.bootstrap_addrs()?;
    let shared = Arc::new(Shared::new(
        Arc::new(index),
        ctx.blobs.clone(),
        mdir,
        ctx.token.clone(),
        swarm.local_peer_id().to_string(),
        ctx.api_url.clone(),
        ctx.key.public(),
    ));
    let (handle, commands) = NodeHandle::channel();
    let (stop, mut stop_rx) = watch::channel(false);
    let event_loop = EventLoop::new(LoopConfig {
        swarm,
        commands,
        shared: shared.clone(),
        key: ctx.key.clone(),
        bootstrap,
        policy: ctx.policy,
        fetch_timeout: ctx.fetch_timeout,
        max_upload_rate: ctx.max_upload_rate,
        // The node's own loop collects garbage for the shared store, holding what
        // every mirror needs.
        disk_budget: None,
        mirrors: None,
        probe: None,
    });
    tracing::info!(target: "ferry::mirror", %network, peer = %shared.peer_id, "mirror starting");
    let task = tokio::spawn(async move {
        event_loop
            .run(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok(Running {
        instance: Instance {
            config,
            shared,
            handle,
        },
        stop,
        task,
    })
}

/// Longest wait for API requests still reading a stopped mirror's index.
const INDEX_RELEASE_WAIT: Duration = Duration::from_secs(5);

async fn stop(r: Running) {
    let Running {
        instance,
        stop,
        task,
    } = r;
    let _ = stop.send(true);
    let _ = task.await;
    // node.json describes a running instance only.
    let _ = std::fs::remove_file(instance.shared.data_dir.path("node.json"));
    // redb locks its file while open: wait until requests that still read this index
    // are done, so that a restarted mirror of the same network can open it again.
    let index = instance.shared.index.clone();
    drop(instance);
    let start = std::time::Instant::now();
    while Arc::strong_count(&index) > 1 && start.elapsed() < INDEX_RELEASE_WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Mirrors {
    /// Starts every mirror in `mirrors.json`. A mirror that fails to start is reported
    /// by `ferry mirror ls` and does not keep the node from running.
    pub fn start_all(ctx: MirrorsContext) -> Arc<Self> {
        let this = Arc::new(Self {
            ctx,
            ops: tokio::sync::Mutex::new(()),
            running: Mutex::new(BTreeMap::new()),
            failed: Mutex::new(BTreeMap::new()),
        });
        let list = match super::load(&this.ctx.dir) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(target: "ferry::mirror", "{e}");
                Vec::new()
            }
        };
        for m in list {
            this.launch(m);
        }
        this
    }

    fn launch(&self, m: MirrorConfig) {
        let network = m.network;
        match start(&self.ctx, m) {
            Ok(r) => {
                if let Ok(mut f) = self.failed.lock() {
                    f.remove(&network);
                }
                if let Ok(mut running) = self.running.lock() {
                    running.insert(network, r);
                }
            }
            Err(e) => {
                tracing::error!(target: "ferry::mirror", "{e}");
                if let Ok(mut f) = self.failed.lock() {
                    f.insert(network, e.to_string());
                }
            }
        }
    }

    fn take(&self, network: &NetworkId) -> Option<Running> {
        self.running.lock().ok()?.remove(network)
    }

    /// Persists `m` and starts (or restarts) its instance. Returns whether a mirror of
    /// the same network was replaced.
    pub async fn add(&self, m: MirrorConfig) -> Result<bool, MirrorError> {
        let _serial = self.ops.lock().await;
        m.check()?;
        // Stop the old instance first: a changed filter deletes its index.
        if let Some(old) = self.take(&m.network) {
            stop(old).await;
        }
        let replaced = super::add(&self.ctx.dir, m.clone())?;
        let network = m.network;
        self.launch(m);
        match self
            .failed
            .lock()
            .ok()
            .and_then(|f| f.get(&network).cloned())
        {
            Some(why) => Err(MirrorError::Start { network, why }),
            None => Ok(replaced),
        }
    }

    /// Stops the mirror of `network` and forgets it (see [`super::remove`]).
    pub async fn remove(&self, network: &NetworkId) -> Result<MirrorConfig, MirrorError> {
        let _serial = self.ops.lock().await;
        if let Some(r) = self.take(network) {
            stop(r).await;
        }
        if let Ok(mut f) = self.failed.lock() {
            f.remove(network);
        }
        super::remove(&self.ctx.dir, network)
    }

    /// The running instances, by network.
    pub fn instances(&self) -> Vec<Instance> {
        self.running
            .lock()
            .map(|r| r.values().map(|r| r.instance.clone()).collect())
            .unwrap_or_default()
    }

    /// The running instance of `network`.
    pub fn get(&self, network: &NetworkId) -> Option<Instance> {
        self.running
            .lock()
            .ok()?
            .get(network)
            .map(|r| r.instance.clone())
    }

    /// Every configured mirror with what its instance is doing.
    pub async fn status(&self) -> Result<Vec<MirrorStatus>, MirrorError> {
        let mut out = Vec::new();
        for config in super::load(&self.ctx.dir)? {
            let error = self
                .failed
                .lock()
                .ok()
                .and_then(|f| f.get(&config.network).cloned());
            let mut s = MirrorStatus {
                config,
                running: false,
                error,
                peer_id: None,
                addrs: Vec::new(),
                peers: 0,
                packages: 0,
                blobs: 0,
            };
            if let Some(i) = self.get(&s.config.network) {
                s.running = true;
                s.peer_id = Some(i.shared.peer_id.clone());
                s.addrs = i
                    .shared
                    .data_dir
                    .node_info()
                    .map(|n| n.addrs)
                    .unwrap_or_default();
                s.peers = i.handle.peers().await.len();
                let (packages, blobs) = held(&i.shared)?;
                s.packages = packages;
                s.blobs = blobs;
            }
            out.push(s);
        }
        Ok(out)
    }

    /// Blobs some mirror needs: those its filter admits (stored, or being fetched) and
    /// those its users fetched through it. Garbage collection of the shared store
    /// keeps them.
    pub fn held_blobs(
        &self,
    ) -> Result<std::collections::HashSet<ferry_protocol::ContentId>, crate::index::IndexError>
    {
        let mut out = std::collections::HashSet::new();
        for i in self.instances() {
            let index = &i.shared.index;
            out.extend(
                index
                    .pinned_blobs(&index.pins()?)?
                    .into_iter()
                    .map(|b| b.content),
            );
            out.extend(index.cache()?.into_keys());
        }
        Ok(out)
    }

    /// Stops every instance.
    pub async fn shutdown(&self) {
        let all: Vec<Running> = match self.running.lock() {
            Ok(mut r) => std::mem::take(&mut *r).into_values().collect(),
            Err(_) => Vec::new(),
        };
        for r in all {
            stop(r).await;
        }
    }
}

/// Packages a mirror indexed, and how many blobs of their releases are stored.
fn held(shared: &Shared) -> Result<(usize, usize), MirrorError> {
    let packages = shared.index.packages()?;
    let mut blobs = std::collections::BTreeSet::new();
    for p in &packages {
        for r in shared.index.releases(p)? {
            let ids =
                std::iter::once(r.content).chain(r.attachments.blobs().map(|(_, a)| a.content));
            blobs.extend(ids.filter(|id| shared.blobs.has(id)));
        }
    }
    Ok((packages.len(), blobs.len()))
}

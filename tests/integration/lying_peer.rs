//! A hostile peer run inside the test: a real libp2p swarm built exactly as a node's
//! (`ferry_node::swarm::build`), which connects to a node, announces itself as a
//! provider of one blob in the DHT, and answers every chunk request for it with
//! corrupted bytes. It answers sync requests with nothing, as a peer that holds no logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_node::libp2p::request_response::{Event, Message};
use ferry_node::libp2p::swarm::SwarmEvent;
use ferry_node::libp2p::{Multiaddr, identity};
use ferry_node::swarm::{self, BehaviourEvent, DialPolicy};
use ferry_protocol::wire::{BlobResponse, SyncRequest, SyncResponse};
use ferry_protocol::{ContentId, NetworkId, chunk};
use futures::StreamExt;
use serde_bytes::ByteBuf;
use tokio::sync::oneshot;

/// A peer that serves corrupt chunks of one blob. Dropping it stops it.
pub struct LyingPeer {
    /// Its peer id.
    pub peer_id: String,
    /// Chunk requests it answered (with bad bytes).
    pub lies: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LyingPeer {
    /// Starts the peer on 127.0.0.1, dialing `dial` (a node's `/p2p/` multiaddr) in
    /// `network`, offering `blob`.
    pub fn start(blob: Vec<u8>, network: &str, dial: &str) -> Self {
        let key = identity::Keypair::generate_ed25519();
        let peer_id = key.public().to_peer_id().to_string();
        let network: NetworkId = network.parse().expect("a network id");
        let dial: Multiaddr = dial.parse().expect("a multiaddr");
        let (stop, stopped) = oneshot::channel();
        let lies = Arc::new(AtomicU64::new(0));
        let counter = lies.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(serve_lies(key, blob, network, dial, counter, stopped));
        });
        Self {
            peer_id,
            lies,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Chunk requests answered so far.
    pub fn lies(&self) -> u64 {
        self.lies.load(Ordering::Relaxed)
    }
}

impl Drop for LyingPeer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve_lies(
    key: identity::Keypair,
    blob: Vec<u8>,
    network: NetworkId,
    dial: Multiaddr,
    lies: Arc<AtomicU64>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut swarm = swarm::build(key, DialPolicy::LoopbackOnly).expect("building the swarm");
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"))
        .expect("listening on loopback");
    if let Some(p) = swarm::peer_of(&dial) {
        swarm.behaviour_mut().kad.add_address(&p, dial.clone());
    }
    swarm.dial(dial).expect("dialing the node");
    let cid = ContentId::of(&blob);
    let size = blob.len() as u64;
    let _ = swarm
        .behaviour_mut()
        .kad
        .start_providing(swarm::blob_key(&network, &cid));
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::Behaviour(BehaviourEvent::Blob(Event::Message {
                    message: Message::Request { request, channel, .. },
                    ..
                })) => {
                    let count = chunk::count(size, chunk::CHUNK_SIZE);
                    let resp = if request.content == cid && request.index < count {
                        let (off, len) = chunk::range(size, chunk::CHUNK_SIZE, request.index);
                        let mut bytes = blob[off as usize..(off + len) as usize].to_vec();
                        // Right length, wrong bytes: only the digest can tell.
                        bytes[len as usize / 2] ^= 0x5a;
                        lies.fetch_add(1, Ordering::Relaxed);
                        BlobResponse::Chunk(ByteBuf::from(bytes))
                    } else {
                        BlobResponse::NotFound
                    };
                    let _ = swarm.behaviour_mut().blob.send_response(channel, resp);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(Event::Message {
                    message: Message::Request { request, channel, .. },
                    ..
                })) => {
                    let resp = match request {
                        SyncRequest::Heads { .. } => SyncResponse::Heads { heads: Vec::new(), more: false },
                        _ => SyncResponse::Records(Vec::new()),
                    };
                    let _ = swarm.behaviour_mut().sync.send_response(channel, resp);
                }
                _ => {}
            }
        }
    }
}

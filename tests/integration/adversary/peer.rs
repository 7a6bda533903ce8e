//! A libp2p peer that lives in the test process: built with the node's own swarm
//! builder, so it speaks Ferry's gossipsub topics, message ids and sync protocol, but
//! it is driven by the test instead of by honest node logic.
//!
//! Each peer runs its swarm on a thread of its own (with a current-thread tokio
//! runtime) and takes commands over a bounded channel, so the test stays synchronous
//! like the rest of the harness. A peer never listens: nobody can dial it, so it is
//! connected exactly to the nodes the test tells it to dial, and it drops any other
//! connection. It answers sync requests with a script the test gives it, and never
//! forwards a gossip message (every message is reported `Ignore`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ferry_node::libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use ferry_node::libp2p::request_response::{Event as RrEvent, Message as RrMessage};
use ferry_node::libp2p::swarm::SwarmEvent;
use ferry_node::libp2p::{Multiaddr, PeerId, identity};
use ferry_node::swarm::{self, BehaviourEvent, DialPolicy};
use ferry_protocol::wire::{SyncRequest, SyncResponse};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::integration::support::{DEADLINE, wait_until};

/// How a peer answers the sync requests honest nodes send it: `None` holds the
/// request unanswered (until the requester times out or the peer stops).
pub type Script = Box<dyn FnMut(&SyncRequest) -> Option<SyncResponse> + Send>;

/// A script that knows nothing: no heads, no records.
pub fn silent() -> Script {
    Box::new(|req| {
        Some(match req {
            SyncRequest::Heads { .. } => SyncResponse::Heads {
                heads: Vec::new(),
                more: false,
            },
            _ => SyncResponse::Records(Vec::new()),
        })
    })
}

/// A gossip message this peer received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The connected peer that sent (or forwarded) it to us.
    pub from: PeerId,
    /// The peer that published it first, as its signature says.
    pub author: Option<PeerId>,
    /// The message bytes (one record envelope, for Ferry).
    pub data: Vec<u8>,
}

/// What the peer observed, shared with the test thread.
#[derive(Default)]
struct Seen {
    connected: HashSet<PeerId>,
    subscriptions: HashMap<PeerId, HashSet<TopicHash>>,
    received: Vec<Received>,
    requests: Vec<(PeerId, SyncRequest)>,
}

enum Cmd {
    Publish(IdentTopic, Vec<u8>, oneshot::Sender<Result<(), String>>),
    Ask(
        PeerId,
        SyncRequest,
        oneshot::Sender<Result<SyncResponse, String>>,
    ),
    Mesh(TopicHash, oneshot::Sender<Vec<PeerId>>),
}

/// A test-driven libp2p peer.
pub struct Peer {
    /// Its peer id.
    pub id: PeerId,
    tx: Option<mpsc::Sender<Cmd>>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    /// Starts a peer with the identity derived from `seed`, subscribed to `topics`,
    /// dialing `dial` and keeping connections only to `allowed`.
    pub fn spawn(
        seed: [u8; 32],
        allowed: &[PeerId],
        dial: &[String],
        topics: &[IdentTopic],
        script: Script,
    ) -> Self {
        let key = identity::Keypair::ed25519_from_bytes(seed).expect("an ed25519 seed");
        let id = key.public().to_peer_id();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, rx) = mpsc::channel(16);
        let allowed: HashSet<PeerId> = allowed.iter().copied().collect();
        let dial: Vec<Multiaddr> = dial
            .iter()
            .map(|a| a.parse().expect("a multiaddr"))
            .collect();
        let topics = topics.to_vec();
        let shared = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(run(key, allowed, dial, topics, script, shared, rx));
        });
        Self {
            id,
            tx: Some(tx),
            seen,
            thread: Some(thread),
        }
    }

    /// Waits until every peer of `peers` is connected and subscribed to `topic`, so
    /// that a publish reaches them directly.
    pub fn wait_subscribed(&self, peers: &[PeerId], topic: &IdentTopic) {
        let hash = topic.hash();
        wait_until(DEADLINE, "honest nodes subscribed to the topic", || {
            let s = self.seen.lock().expect("peer state");
            peers.iter().all(|p| {
                s.connected.contains(p) && s.subscriptions.get(p).is_some_and(|t| t.contains(&hash))
            })
        });
    }

    /// Waits until every peer of `peers` is connected.
    pub fn wait_connected(&self, peers: &[PeerId]) {
        wait_until(DEADLINE, "connections to the honest nodes", || {
            let s = self.seen.lock().expect("peer state");
            peers.iter().all(|p| s.connected.contains(p))
        });
    }

    /// Publishes `data` on `topic` to every connected subscriber.
    pub fn publish(&self, topic: &IdentTopic, data: Vec<u8>) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Publish(topic.clone(), data, reply));
        rx.blocking_recv()
            .unwrap_or_else(|_| Err("peer stopped".into()))
    }

    /// Sends a sync request to `peer` and waits for its answer.
    pub fn ask(&self, peer: PeerId, req: SyncRequest) -> Result<SyncResponse, String> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Ask(peer, req, reply));
        rx.blocking_recv()
            .unwrap_or_else(|_| Err("peer stopped".into()))
    }

    /// The peers in our gossipsub mesh for `topic`: those that graft us forward what
    /// they accept to us.
    pub fn mesh(&self, topic: &IdentTopic) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Mesh(topic.hash(), reply));
        rx.blocking_recv().unwrap_or_default()
    }

    /// Sync requests `peer` sent us so far.
    pub fn requests_from(&self, peer: &PeerId) -> Vec<SyncRequest> {
        let s = self.seen.lock().expect("peer state");
        s.requests
            .iter()
            .filter(|(p, _)| p == peer)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Gossip messages received so far.
    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().expect("peer state").received.clone()
    }

    fn send(&self, cmd: Cmd) {
        if let Some(tx) = &self.tx {
            // A full channel or a stopped peer shows up as a dropped reply.
            let _ = tx.blocking_send(cmd);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Closing the channel stops the loop.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run(
    key: identity::Keypair,
    allowed: HashSet<PeerId>,
    dial: Vec<Multiaddr>,
    topics: Vec<IdentTopic>,
    mut script: Script,
    seen: Arc<Mutex<Seen>>,
    mut rx: mpsc::Receiver<Cmd>,
) {
    let mut swarm = swarm::build(key, DialPolicy::LoopbackOnly).expect("building the swarm");
    for t in &topics {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .expect("subscribing");
    }
    for a in dial {
        swarm.dial(a).expect("dialing an honest node");
    }
    let mut asks: HashMap<_, oneshot::Sender<Result<SyncResponse, String>>> = HashMap::new();
    let mut held = Vec::new();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                Some(Cmd::Publish(topic, data, reply)) => {
                    let r = swarm.behaviour_mut().gossipsub.publish(topic, data);
                    let _ = reply.send(r.map(|_| ()).map_err(|e| e.to_string()));
                }
                Some(Cmd::Mesh(topic, reply)) => {
                    let _ = reply.send(swarm.behaviour().gossipsub.mesh_peers(&topic).copied().collect());
                }
                Some(Cmd::Ask(peer, req, reply)) => {
                    let id = swarm.behaviour_mut().sync.send_request(&peer, req);
                    asks.insert(id, reply);
                }
            },
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    if allowed.contains(&peer_id) {
                        seen.lock().expect("peer state").connected.insert(peer_id);
                    } else {
                        let _ = swarm.disconnect_peer_id(peer_id);
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    seen.lock().expect("peer state").connected.remove(&peer_id);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => match ev {
                    gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                        seen.lock()
                            .expect("peer state")
                            .subscriptions
                            .entry(peer_id)
                            .or_default()
                            .insert(topic);
                    }
                    gossipsub::Event::Message { propagation_source, message_id, message } => {
                        seen.lock().expect("peer state").received.push(Received {
                            from: propagation_source,
                            author: message.source,
                            data: message.data,
                        });
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                    }
                    _ => {}
                },
                SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => match ev {
                    RrEvent::Message { peer, message: RrMessage::Request { request, channel, .. }, .. } => {
                        let resp = script(&request);
                        seen.lock().expect("peer state").requests.push((peer, request));
                        match resp {
                            Some(r) => {
                                let _ = swarm.behaviour_mut().sync.send_response(channel, r);
                            }
                            None => held.push(channel),
                        }
                    }
                    RrEvent::Message { message: RrMessage::Response { request_id, response }, .. } => {
                        if let Some(reply) = asks.remove(&request_id) {
                            let _ = reply.send(Ok(response));
                        }
                    }
                    RrEvent::OutboundFailure { request_id, error, .. } => {
                        if let Some(reply) = asks.remove(&request_id) {
                            let _ = reply.send(Err(error.to_string()));
                        }
                    }
                    _ => {}
                },
                _ => {}
            },
        }
    }
}

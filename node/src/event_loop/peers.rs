//! Connection trimming: a node keeps a bounded number of connections.
//!
//! Gossipsub keeps a stream open on every connection, which keeps every connection
//! alive whatever the idle timeout says; and every DHT walk connects to peers it
//! has not met yet. Left alone, each node of a network ends up connected to every
//! other one it ever asked anything: in a 200-node simulation every node held 199
//! connections, and their keep-alives, gossip heartbeats and pings took most of the
//! CPU. Like go-libp2p's connection manager, the loop lets the count grow to
//! [`PEERS_HIGH_WATER`] and then closes connections down to [`PEERS_LOW_WATER`],
//! never closing one that is still useful: to a bootstrap peer, to a gossip mesh
//! peer, one carrying our sync or chunk requests, or one that carried a request either
//! way (or was opened) less than [`CONNECTION_GRACE`] ago; the least recently used go
//! first.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::{PeerId, request_response};

use super::EventLoop;
use crate::swarm;

/// Connections above which the node starts closing some.
pub const PEERS_HIGH_WATER: usize = 48;
/// Connections a trim brings the node down to (protected ones may keep it above).
pub const PEERS_LOW_WATER: usize = 32;
/// Age below which a connection is never trimmed.
pub const CONNECTION_GRACE: Duration = Duration::from_secs(10);

/// When each connected peer last connected or exchanged a request with us.
#[derive(Default)]
pub(super) struct PeerBook {
    since: HashMap<PeerId, Instant>,
}

impl PeerBook {
    pub(super) fn connected(&mut self, peer: PeerId) {
        self.since.entry(peer).or_insert_with(Instant::now);
    }

    /// A sync or blob request or response went either way.
    pub(super) fn used<A, B>(&mut self, ev: &request_response::Event<A, B>) {
        use request_response::Event as E;
        let peer = match ev {
            E::Message { peer, .. }
            | E::OutboundFailure { peer, .. }
            | E::InboundFailure { peer, .. }
            | E::ResponseSent { peer, .. } => peer,
        };
        if let Some(t) = self.since.get_mut(peer) {
            *t = Instant::now();
        }
    }

    pub(super) fn disconnected(&mut self, peer: &PeerId) {
        self.since.remove(peer);
    }
}

impl EventLoop {
    /// Closes connections beyond the high-water mark, least recently used first.
    pub(super) fn trim_connections(&mut self) {
        if self.connected.len() <= PEERS_HIGH_WATER {
            return;
        }
        let now = Instant::now();
        let mut protected: HashSet<PeerId> =
            self.bootstrap.iter().filter_map(swarm::peer_of).collect();
        protected.extend(self.swarm.behaviour().gossipsub.all_mesh_peers().copied());
        protected.extend(self.blob_requests.values().map(|(_, peer, _)| *peer));
        protected.extend(self.sync.busy_peers());
        let mut candidates: Vec<(Instant, PeerId)> = self
            .connected
            .iter()
            .filter(|p| !protected.contains(p))
            .filter_map(|p| {
                let since = self.peers.since.get(p).copied().unwrap_or(now);
                (now.duration_since(since) >= CONNECTION_GRACE).then_some((since, *p))
            })
            .collect();
        candidates.sort();
        let excess = self.connected.len().saturating_sub(PEERS_LOW_WATER);
        let closing: Vec<PeerId> = candidates
            .into_iter()
            .take(excess)
            .map(|(_, p)| p)
            .collect();
        if !closing.is_empty() {
            tracing::debug!(target: "ferry::net", connected = self.connected.len(), closing = closing.len(), "trimming connections");
        }
        for peer in closing {
            // The DHT keeps the address: a later walk or download can dial it again.
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }
}

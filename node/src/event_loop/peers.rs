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

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libp2p::{PeerId, request_response};

use super::EventLoop;
use crate::swarm;

/// Connections above which the node starts closing some.
pub const PEERS_HIGH_WATER: usize = 48;
/// Connections a trim brings the node down to (protected ones may keep it above).
pub const PEERS_LOW_WATER: usize = 32;
/// Time since a connection opened or was last used below which it is never trimmed.
pub const CONNECTION_GRACE: Duration = Duration::from_secs(10);

impl EventLoop {
    /// A sync or blob request or response went either way: the connection is in use.
    pub(super) fn used<A, B>(&mut self, ev: &request_response::Event<A, B>) {
        use request_response::Event as E;
        let peer = match ev {
            E::Message { peer, .. }
            | E::OutboundFailure { peer, .. }
            | E::InboundFailure { peer, .. }
            | E::ResponseSent { peer, .. } => peer,
        };
        if let Some(t) = self.connected.get_mut(peer) {
            *t = Instant::now();
        }
    }

    /// Closes connections beyond the high-water mark, least recently used first, and
    /// returns the peers it disconnected.
    pub(super) fn trim_connections(&mut self) -> Vec<PeerId> {
        if self.connected.len() <= PEERS_HIGH_WATER {
            return Vec::new();
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
            .filter(|(p, used)| {
                !protected.contains(p) && now.duration_since(**used) >= CONNECTION_GRACE
            })
            .map(|(p, used)| (*used, *p))
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
        for peer in &closing {
            // The DHT keeps the address: a later walk or download can dial it again.
            let _ = self.swarm.disconnect_peer_id(*peer);
        }
        closing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::gc::tests::fixture;

    #[tokio::test]
    async fn trims_least_recently_used_down_to_low_water_and_spares_recent_and_busy_peers() {
        let mut f = fixture(None);
        let l = &mut f.event_loop;
        let now = Instant::now();
        // 40 idle peers, the first the longest idle; 15 used just now; 5 idle ones
        // carrying a chunk request of ours.
        let idle: Vec<PeerId> = (0..40).map(|_| PeerId::random()).collect();
        for (i, p) in idle.iter().enumerate() {
            l.connected
                .insert(*p, now - Duration::from_secs(100 - i as u64));
        }
        let recent: Vec<PeerId> = (0..15).map(|_| PeerId::random()).collect();
        for p in &recent {
            l.connected.insert(*p, now);
        }
        let busy: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        for p in &busy {
            l.connected.insert(*p, now - Duration::from_secs(100));
            let rid = l.swarm.behaviour_mut().blob.send_request(
                p,
                ferry_protocol::wire::BlobRequest {
                    content: ferry_protocol::ContentId::of(b"x"),
                    index: 0,
                },
            );
            l.blob_requests
                .insert(rid, (ferry_protocol::ContentId::of(b"x"), *p, 0));
        }
        assert_eq!(l.connected.len(), 60);

        let closed = l.trim_connections();
        // 60 - 32 = 28 to close, taken from the idle ones, longest idle first.
        assert_eq!(closed, idle[..28].to_vec());
        assert!(
            closed
                .iter()
                .all(|p| !recent.contains(p) && !busy.contains(p))
        );

        // At or under the high-water mark nothing is closed.
        for p in &closed {
            l.connected.remove(p);
        }
        assert!(l.trim_connections().is_empty());
    }
}

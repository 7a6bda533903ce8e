//! Catch-up by sync: compare log heads with peers and pull missing records.
//!
//! Gossip is fast but lossy (a node that is offline, starts late or joins a mesh after
//! a message misses it). Every [`super::SYNC_INTERVAL`], on every new connection, and
//! whenever gossip shows we are behind, a node asks its peers for their log heads and
//! fetches the records after its own head, in order, through the same validation as
//! gossip. That is what makes delivery certain.

use std::collections::{HashMap, HashSet, VecDeque};

use ferry_protocol::record::OPERATOR_LOG;
use ferry_protocol::wire::{LogHead, MAX_BY_ID, MAX_HEADS, MAX_RECORDS, SyncRequest, SyncResponse};
use libp2p::PeerId;
use libp2p::request_response::{Event, Message, OutboundRequestId};
use serde_bytes::ByteBuf;

use super::{EventLoop, MAX_SYNC_REQUESTS_PER_PEER, SYNC_PEERS_PER_TICK};

/// Sync bookkeeping.
#[derive(Default)]
pub(super) struct SyncState {
    /// Outstanding requests: what each asked.
    in_flight: HashMap<OutboundRequestId, (PeerId, SyncRequest)>,
    /// Peers with a heads request outstanding.
    heads_pending: HashSet<PeerId>,
    /// (peer, log) pairs with a records request outstanding or queued.
    logs_pending: HashSet<(PeerId, String)>,
    /// Record requests (by position or by id) in flight, per peer.
    pulls: HashMap<PeerId, usize>,
    /// Record requests waiting for one of a peer's [`MAX_SYNC_REQUESTS_PER_PEER`]
    /// slots, at most [`MAX_HEADS`] per peer; the rest is asked for next round.
    queued: HashMap<PeerId, VecDeque<SyncRequest>>,
    /// Application scores of peers that sent invalid records.
    pub(super) penalties: HashMap<PeerId, f64>,
    /// (peer, log) pairs already re-pulled one record back after a `prev` mismatch.
    rewound: HashSet<(PeerId, String)>,
    /// Set when the operator log grew: package records that failed for lack of a
    /// namespace may now apply, so sync again at once.
    pub(super) operator_advanced: bool,
    /// Where the next periodic round starts in the sorted list of connected peers.
    cursor: usize,
}

impl SyncState {
    pub(super) fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    pub(super) fn heads_pending_len(&self) -> usize {
        self.heads_pending.len()
    }

    /// Peers with sync requests of ours outstanding or queued.
    pub(super) fn busy_peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.in_flight
            .values()
            .map(|(p, _)| *p)
            .chain(self.queued.keys().copied())
    }

    pub(super) fn forget_peer(&mut self, peer: &PeerId) {
        self.heads_pending.remove(peer);
        self.logs_pending.retain(|(p, _)| p != peer);
        self.in_flight.retain(|_, (p, _)| p != peer);
        self.pulls.remove(peer);
        self.queued.remove(peer);
    }
}

impl EventLoop {
    /// Asks every connected peer for its heads (after a pin change, which makes new
    /// logs wanted at once).
    pub(super) fn sync_all(&mut self) {
        self.sync.operator_advanced = false;
        let peers: Vec<PeerId> = self.connected.keys().copied().collect();
        for p in peers {
            self.sync_with(p);
        }
    }

    /// One periodic round: asks the next [`SYNC_PEERS_PER_TICK`] connected peers, in
    /// turn, for their heads.
    pub(super) fn sync_round(&mut self) {
        self.sync.operator_advanced = false;
        let mut peers: Vec<PeerId> = self.connected.keys().copied().collect();
        peers.sort_unstable();
        let n = peers.len().min(SYNC_PEERS_PER_TICK);
        let start = if peers.is_empty() {
            0
        } else {
            self.sync.cursor % peers.len()
        };
        for p in peers
            .iter()
            .cycle()
            .skip(start)
            .take(n)
            .copied()
            .collect::<Vec<_>>()
        {
            self.sync_with(p);
        }
        self.sync.cursor = start + n;
    }

    pub(super) fn sync_with(&mut self, peer: PeerId) {
        if !self.connected.contains_key(&peer) || !self.sync.heads_pending.insert(peer) {
            return;
        }
        self.send_sync(
            peer,
            SyncRequest::Heads {
                network: self.network,
                after: None,
                limit: MAX_HEADS,
            },
        );
    }

    fn send_sync(&mut self, peer: PeerId, req: SyncRequest) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, req.clone());
        self.sync.in_flight.insert(id, (peer, req));
    }

    /// Sends a record request now if the peer has a free slot, else queues it.
    /// Returns false if the queue was full and the request was dropped.
    fn request_records(&mut self, peer: PeerId, req: SyncRequest) -> bool {
        let busy = self.sync.pulls.get(&peer).copied().unwrap_or(0);
        if busy < MAX_SYNC_REQUESTS_PER_PEER {
            self.sync.pulls.insert(peer, busy + 1);
            self.send_sync(peer, req);
            return true;
        }
        let q = self.sync.queued.entry(peer).or_default();
        if q.len() >= MAX_HEADS as usize {
            return false;
        }
        q.push_back(req);
        true
    }

    /// Frees the slot of a finished record request and sends queued ones.
    fn pull_done(&mut self, peer: PeerId) {
        if let Some(n) = self.sync.pulls.get_mut(&peer) {
            *n = n.saturating_sub(1);
        }
        while self.sync.pulls.get(&peer).copied().unwrap_or(0) < MAX_SYNC_REQUESTS_PER_PEER {
            let Some(req) = self.sync.queued.get_mut(&peer).and_then(|q| q.pop_front()) else {
                break;
            };
            *self.sync.pulls.entry(peer).or_default() += 1;
            self.send_sync(peer, req);
        }
    }

    pub(super) fn on_sync_event(&mut self, ev: Event<SyncRequest, SyncResponse>) {
        match ev {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let resp = self.answer_sync(request);
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, resp)
                    .is_err()
                {
                    tracing::debug!(target: "ferry::sync", %peer, "peer left before our answer");
                }
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, req)) = self.sync.in_flight.remove(&request_id) {
                    self.on_sync_response(peer, req, response);
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, req)) = self.sync.in_flight.remove(&request_id) {
                    self.clear_pending(peer, &req);
                }
                if undecodable(&error) {
                    // Over the size cap or not CBOR of a response: the peer broke the
                    // protocol, which a slow or departing honest peer never does.
                    tracing::info!(target: "ferry::sync", %peer, "peer sent a sync response that does not decode: {error}");
                    self.penalize(&peer);
                } else {
                    tracing::debug!(target: "ferry::sync", %peer, "sync request failed: {error}");
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(target: "ferry::sync", %peer, "inbound sync failed: {error}");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn clear_pending(&mut self, peer: PeerId, req: &SyncRequest) {
        match req {
            SyncRequest::Heads { .. } => {
                self.sync.heads_pending.remove(&peer);
            }
            SyncRequest::Records { log, .. } => {
                self.sync.logs_pending.remove(&(peer, log.clone()));
                self.pull_done(peer);
            }
            SyncRequest::ById { .. } => self.pull_done(peer),
        }
    }

    fn answer_sync(&self, req: SyncRequest) -> SyncResponse {
        let net = match &req {
            SyncRequest::Heads { network, .. }
            | SyncRequest::Records { network, .. }
            | SyncRequest::ById { network, .. } => *network,
        };
        if net != self.network {
            return SyncResponse::Refused(format!(
                "this node follows network {}, not {net}",
                self.network
            ));
        }
        let res = match req {
            SyncRequest::Heads { after, limit, .. } => self
                .index
                .heads(after.as_deref(), limit.min(MAX_HEADS) as usize)
                .map(|(heads, more)| SyncResponse::Heads { heads, more }),
            SyncRequest::Records {
                log,
                from_seq,
                limit,
                ..
            } => self
                .index
                .records_from(&log, from_seq, limit.min(MAX_RECORDS) as usize)
                .map(|rs| SyncResponse::Records(rs.into_iter().map(ByteBuf::from).collect())),
            SyncRequest::ById { ids, .. } => {
                let mut out = Vec::new();
                for id in ids.iter().take(MAX_BY_ID) {
                    match self.index.record(id).and_then(|r| match r {
                        Some(b) => Ok(Some(b)),
                        None => self.index.evidence(id),
                    }) {
                        Ok(Some(b)) => out.push(ByteBuf::from(b)),
                        Ok(None) => {}
                        Err(e) => return SyncResponse::Refused(e.to_string()),
                    }
                }
                Ok(SyncResponse::Records(out))
            }
        };
        res.unwrap_or_else(|e| SyncResponse::Refused(e.to_string()))
    }

    fn on_sync_response(&mut self, peer: PeerId, req: SyncRequest, resp: SyncResponse) {
        self.clear_pending(peer, &req);
        match (req, resp) {
            (SyncRequest::Heads { .. }, SyncResponse::Heads { heads, more }) => {
                let heads: Vec<LogHead> = heads.into_iter().take(MAX_HEADS as usize).collect();
                let last = heads.last().map(|h| h.log.clone());
                // The operator log first: package logs can only be checked against it.
                let mut ordered = heads;
                ordered.sort_by_key(|h| h.log != OPERATOR_LOG);
                for h in ordered {
                    self.maybe_pull(peer, h);
                }
                if more && let Some(after) = last {
                    self.send_sync(
                        peer,
                        SyncRequest::Heads {
                            network: self.network,
                            after: Some(after),
                            limit: MAX_HEADS,
                        },
                    );
                }
            }
            (SyncRequest::Records { log, from_seq, .. }, SyncResponse::Records(records)) => {
                let records: Vec<ByteBuf> =
                    records.into_iter().take(MAX_RECORDS as usize).collect();
                let n = records.len();
                let pages: Vec<&[u8]> = records.iter().map(|b| b.as_slice()).collect();
                let outcomes = self.ingest_many(&pages);
                let mut all_new = true;
                for (i, o) in outcomes.into_iter().enumerate() {
                    if let Err(benign) = o {
                        if !benign {
                            tracing::info!(target: "ferry::sync", %peer, %log, seq = from_seq + i as u64, "peer sent an invalid record");
                            self.penalize(&peer);
                        } else if i == 0
                            && from_seq > 0
                            && self.sync.rewound.insert((peer, log.clone()))
                        {
                            // Its first record does not follow our head: the peer holds a
                            // different record before it. Fetch that one too, so the
                            // fork shows.
                            self.pull(peer, log.clone(), from_seq - 1);
                        }
                        all_new = false;
                        break;
                    }
                }
                if all_new && n == MAX_RECORDS as usize {
                    self.pull(peer, log, from_seq + n as u64);
                }
                if self.sync.operator_advanced {
                    self.sync_round();
                }
            }
            (SyncRequest::ById { .. }, SyncResponse::Records(records)) => {
                for bytes in records.into_iter().take(MAX_BY_ID) {
                    if let Err(false) = self.ingest_bytes(&bytes) {
                        self.penalize(&peer);
                    }
                }
            }
            (_, SyncResponse::Refused(why)) => {
                tracing::info!(target: "ferry::sync", %peer, "peer refused sync: {why}");
            }
            _ => {
                tracing::info!(target: "ferry::sync", %peer, "peer answered sync with the wrong kind of response");
                self.penalize(&peer);
            }
        }
    }

    fn maybe_pull(&mut self, peer: PeerId, h: LogHead) {
        if self.unfollowed(&h.log) {
            return;
        }
        let ours = match self.index.head(&h.log) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(target: "ferry::index", "{e}");
                return;
            }
        };
        // Conflicting records the peer keeps as evidence and we have never seen.
        let unknown: Vec<_> = h
            .fork
            .iter()
            .filter(|id| !self.index.knows(id).unwrap_or(true))
            .copied()
            .take(MAX_BY_ID)
            .collect();
        if !unknown.is_empty() {
            self.request_records(
                peer,
                SyncRequest::ById {
                    network: self.network,
                    ids: unknown,
                },
            );
        }
        let from = match ours {
            // Same position, different record: pull theirs so the conflict shows.
            Some((o, _)) if o.seq == h.seq && o.id != h.id && h.fork.is_empty() => h.seq,
            Some((o, _)) if o.seq >= h.seq => return,
            Some((o, _)) => o.seq + 1,
            None => 0,
        };
        self.pull(peer, h.log, from);
    }

    fn pull(&mut self, peer: PeerId, log: String, from_seq: u64) {
        if !self.sync.logs_pending.insert((peer, log.clone())) {
            return;
        }
        let req = SyncRequest::Records {
            network: self.network,
            log: log.clone(),
            from_seq,
            limit: MAX_RECORDS,
        };
        if !self.request_records(peer, req) {
            self.sync.logs_pending.remove(&(peer, log));
        }
    }
}

/// Whether a failed request failed because the response could not be decoded (too
/// large for [`crate::swarm`]'s response cap, truncated, or not a response at all),
/// as opposed to a timeout or a closed connection.
fn undecodable(error: &libp2p::request_response::OutboundFailure) -> bool {
    use std::io::ErrorKind;
    matches!(
        error,
        libp2p::request_response::OutboundFailure::Io(e)
            if matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof | ErrorKind::Unsupported)
    )
}

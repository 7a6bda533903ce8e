//! Downloads: chunks from every known provider at once, each verified on arrival.
//!
//! Providers come from the DHT and, as a fallback while the DHT query runs, from the
//! peers we are connected to (a peer without the blob answers `NotFound` and is not
//! asked again). A peer that sends a chunk that does not match its signed digest is
//! dropped from the download and penalized; its chunk goes back in the queue for
//! another provider. Progress survives restarts: the partial file and the pending
//! entry in the index let a restarted node resume where it stopped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use ferry_protocol::wire::{BlobRequest, BlobResponse};
use ferry_protocol::{ContentId, Namespace, chunk};

use libp2p::request_response::{Event, Message};
use libp2p::{PeerId, kad};
use tokio::sync::oneshot;

use super::EventLoop;
use crate::blob_store::Partial;
use crate::command::FetchError;
use crate::index::ReleaseEntry;
use crate::swarm;

mod chunk_io;
#[cfg(test)]
mod tests;
pub(super) use chunk_io::Writes;

/// Chunk requests outstanding per provider.
const PER_PEER_WINDOW: usize = 4;
/// Chunk requests outstanding per download.
const DOWNLOAD_WINDOW: usize = 16;
/// A download with no progress for this long fails its waiters (default of
/// `ferry node start --fetch-timeout`).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Minimum time between two provider queries of one download.
const REQUERY: Duration = Duration::from_secs(3);
/// Providers named by the DHT after which a download's provider query stops.
const ENOUGH_PROVIDERS: usize = 4;
/// Failed requests after which a provider is dropped from a download.
const MAX_FAILURES: u32 = 3;

#[derive(Default)]
struct Provider {
    in_flight: usize,
    failures: u32,
    /// The DHT lists it as a provider: asked before anyone else.
    listed: bool,
    /// It follows the release's namespace (subscribes to its topic), so it holds the
    /// blob if it pins it, or will soon: asked before peers that are merely connected.
    follower: bool,
}

/// Waiters of downloads whose final check runs on a blocking thread.
pub(super) type Finishing =
    HashMap<ContentId, (ReleaseEntry, Vec<oneshot::Sender<Result<(), FetchError>>>)>;

pub(super) struct Download {
    entry: ReleaseEntry,
    partial: Partial,
    queue: VecDeque<u64>,
    in_flight: usize,
    providers: HashMap<PeerId, Provider>,
    /// Peers that lack the blob or sent a bad chunk: not asked again in this download.
    excluded: HashSet<PeerId>,
    pub(super) waiters: Vec<oneshot::Sender<Result<(), FetchError>>>,
    last_progress: Instant,
    last_query: Option<Instant>,
}

impl EventLoop {
    pub(super) fn resume_downloads(&mut self) {
        match self.index.pending() {
            Ok(list) => {
                for entry in list {
                    tracing::info!(target: "ferry::fetch", content = %entry.content, "resuming download of {}@{}", entry.package, entry.version);
                    let (tx, _rx) = oneshot::channel();
                    self.start_fetch(entry, tx);
                }
            }
            Err(e) => tracing::error!(target: "ferry::index", "{e}"),
        }
    }

    pub(super) fn start_fetch(
        &mut self,
        entry: ReleaseEntry,
        reply: oneshot::Sender<Result<(), FetchError>>,
    ) {
        let id = entry.content;
        if self.blobs.has(&id) {
            let _ = reply.send(Ok(()));
            return;
        }
        if let Some(d) = self.downloads.get_mut(&id) {
            d.waiters.push(reply);
            return;
        }
        if let Some((_, waiters)) = self.finishing.get_mut(&id) {
            waiters.push(reply);
            return;
        }
        let partial = match self.blobs.begin(id, entry.size, &entry.chunks) {
            Ok(p) => p,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        if let Err(e) = self.index.add_pending(&entry) {
            let _ = reply.send(Err(e.into()));
            return;
        }
        let queue: VecDeque<u64> = partial.missing().into();
        let queue_empty = queue.is_empty();
        let resumed = chunk::count(entry.size, chunk::CHUNK_SIZE) - queue.len() as u64;
        self.shared.transfer.download_started(
            id,
            format!("{}@{}", entry.package, entry.version),
            entry.size,
            resumed,
            partial.done_bytes(),
        );
        let followers = self.followers_of(entry.package.namespace());
        let providers = self
            .connected
            .keys()
            .map(|p| {
                let follower = followers.contains(p);
                (
                    *p,
                    Provider {
                        follower,
                        ..Provider::default()
                    },
                )
            })
            .collect();
        self.shared
            .set_progress(id, partial.done_bytes(), entry.size);
        self.downloads.insert(
            id,
            Download {
                entry,
                partial,
                queue,
                in_flight: 0,
                providers,
                excluded: HashSet::new(),
                waiters: vec![reply],
                last_progress: Instant::now(),
                last_query: None,
            },
        );
        if queue_empty {
            // Every chunk is already on disk: a chunk that arrived after an earlier
            // attempt gave up, or a crash between the last write and the rename.
            // Nothing would ever arrive to finish it.
            self.finish_download(id);
            return;
        }
        // Followers of the namespace usually hold the blob already; the DHT walk (a
        // dozen or more requests, often new connections) is asked only when none is
        // connected, or once they have all said no (see `schedule`).
        if followers.is_empty() {
            self.query_providers(id);
        }
        self.schedule(id);
    }

    /// Connected peers subscribed to the topic of namespace `ns`.
    fn followers_of(&self, ns: &Namespace) -> HashSet<PeerId> {
        let topic = swarm::namespace_topic(&self.network, ns).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Whether a provider query for `id` is running.
    fn querying(&self, id: &ContentId) -> bool {
        self.provider_queries.values().any(|c| c == id)
    }

    fn query_providers(&mut self, id: ContentId) {
        let key = swarm::blob_key(&self.network, &id);
        let q = self.swarm.behaviour_mut().kad.get_providers(key);
        self.provider_queries.insert(q, id);
        if let Some(d) = self.downloads.get_mut(&id) {
            d.last_query = Some(Instant::now());
        }
    }

    pub(super) fn on_providers(&mut self, qid: kad::QueryId, res: kad::GetProvidersResult) {
        let Some(id) = self.provider_queries.get(&qid).copied() else {
            return;
        };
        match res {
            Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                tracing::debug!(target: "ferry::fetch", %id, count = providers.len(), "the DHT names providers");
                let me = *self.swarm.local_peer_id();
                let listed = match self.downloads.get_mut(&id) {
                    Some(d) => {
                        for p in providers {
                            if p != me && !d.excluded.contains(&p) {
                                d.providers.entry(p).or_default().listed = true;
                            }
                        }
                        d.providers.values().filter(|p| p.listed).count()
                    }
                    None => usize::MAX,
                };
                // A walk goes on until it has asked the closest peers to the key; once
                // enough providers are known (or the download is over) the rest of it
                // is load on the network for nothing.
                if listed >= ENOUGH_PROVIDERS
                    && let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&qid)
                {
                    q.finish();
                }
                self.schedule(id);
            }
            Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                self.provider_queries.remove(&qid);
            }
        }
    }

    fn schedule(&mut self, id: ContentId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let mut sends = Vec::new();
        while d.in_flight < DOWNLOAD_WINDOW && !d.queue.is_empty() {
            let best = d
                .providers
                .iter()
                .filter(|(_, p)| p.in_flight < PER_PEER_WINDOW)
                // Peers the DHT names first, then followers of the namespace: with
                // many connections, walking connected peers one request at a time in
                // arbitrary order took tens of seconds per blob in a 100-node
                // simulation, most peers answering that they lack it.
                .min_by_key(|(_, p)| (!p.listed, !p.follower, p.in_flight))
                .map(|(peer, _)| *peer);
            let Some(peer) = best else { break };
            let Some(index) = d.queue.pop_front() else {
                break;
            };
            if let Some(p) = d.providers.get_mut(&peer) {
                p.in_flight += 1;
            }
            d.in_flight += 1;
            sends.push((peer, index));
        }
        // Walk the DHT as soon as the peers likely to hold the blob (listed ones and
        // followers of the namespace) are used up, alongside asking the others.
        let exhausted = !d.queue.is_empty()
            && !d
                .providers
                .values()
                .any(|p| (p.listed || p.follower) && p.in_flight < PER_PEER_WINDOW);
        let may_query = d.last_query.is_none_or(|t| t.elapsed() > REQUERY);
        if exhausted && may_query && !self.querying(&id) {
            self.query_providers(id);
        }
        for (peer, index) in sends {
            tracing::debug!(target: "ferry::fetch", %id, %peer, index, "asking for a chunk");
            let rid = self
                .swarm
                .behaviour_mut()
                .blob
                .send_request(&peer, BlobRequest { content: id, index });
            self.blob_requests.insert(rid, (id, peer, index));
        }
    }

    pub(super) fn fetch_tick(&mut self) {
        let now = Instant::now();
        let ids: Vec<ContentId> = self.downloads.keys().copied().collect();
        let connected: Vec<PeerId> = self.connected.keys().copied().collect();
        for id in ids {
            let querying = self.querying(&id);
            let Some(d) = self.downloads.get_mut(&id) else {
                continue;
            };
            d.waiters.retain(|w| !w.is_closed());
            if now.duration_since(d.last_progress) > self.stall_timeout {
                // Give up: tell the waiters and stop retrying. The verified chunks stay
                // in the partial file, so a later fetch resumes from them.
                tracing::info!(target: "ferry::fetch", %id, "no provider made progress for {:?}: giving up for now", self.stall_timeout);
                let waiters = std::mem::take(&mut d.waiters);
                self.downloads.remove(&id);
                self.shared.transfer.download_ended(&id, "stalled");
                self.shared.clear_progress(&id);
                let _ = self.index.remove_pending(&id);
                self.blob_requests.retain(|_, (c, _, _)| *c != id);
                for w in waiters {
                    let _ = w.send(Err(FetchError::NoProvider(id)));
                }
                continue;
            }
            let idle = d.in_flight == 0;
            let need_query =
                idle && !querying && d.last_query.is_none_or(|t| now.duration_since(t) > REQUERY);
            if need_query {
                // A peer that lacked the blob may have fetched it since: ask again.
                d.excluded.retain(|p| !connected.contains(p));
                let ns = d.entry.package.namespace().clone();
                let followers = self.followers_of(&ns);
                if let Some(d) = self.downloads.get_mut(&id) {
                    for p in &connected {
                        d.providers.entry(*p).or_default().follower = followers.contains(p);
                    }
                }
                self.query_providers(id);
            }
            self.schedule(id);
        }
    }

    pub(super) fn on_blob_event(&mut self, ev: Event<BlobRequest, BlobResponse>) {
        match ev {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_blob_request(peer, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((id, _, index)) = self.blob_requests.remove(&request_id) {
                    self.on_chunk(id, peer, index, Some(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((id, _, index)) = self.blob_requests.remove(&request_id) {
                    tracing::debug!(target: "ferry::fetch", %peer, %id, index, "chunk request failed: {error}");
                    self.on_chunk(id, peer, index, None);
                }
            }
            _ => {}
        }
    }

    /// Hands a complete download to a blocking thread for the final whole-blob check,
    /// fsync and rename: hashing a large blob would stall the event loop for seconds.
    fn finish_download(&mut self, id: ContentId) {
        let Some(d) = self.downloads.remove(&id) else {
            return;
        };
        let blobs = self.blobs.clone();
        let done = self.finished_tx.clone();
        let Download {
            entry,
            partial,
            waiters,
            ..
        } = d;
        self.finishing.insert(id, (entry, waiters));
        tokio::task::spawn_blocking(move || {
            let res = partial.finish(&blobs).map_err(|e| e.to_string());
            let _ = done.blocking_send((id, res));
        });
    }

    /// The blocking part of [`Self::finish_download`] is done.
    pub(super) fn on_finished(&mut self, id: ContentId, res: Result<ContentId, String>) {
        let Some((entry, waiters)) = self.finishing.remove(&id) else {
            return;
        };
        self.shared.clear_progress(&id);
        let _ = self.index.remove_pending(&id);
        self.shared
            .transfer
            .download_ended(&id, if res.is_ok() { "complete" } else { "failed" });
        if let (Ok(_), Some(reason)) = (&res, self.deletion_reason(&id)) {
            // Deleted while it downloaded: it must not be kept or served.
            self.forget_blob(&id);
            for w in waiters {
                let _ = w.send(Err(FetchError::Deleted(reason.clone())));
            }
            return;
        }
        match res {
            Ok(_) => {
                tracing::info!(target: "ferry::fetch", %id, "stored {}@{}", entry.package, entry.version);
                self.provide(&id);
                self.gc_due = true;
                self.probe_blob(&id);
                for w in waiters {
                    let _ = w.send(Ok(()));
                }
            }
            Err(msg) => {
                tracing::error!(target: "ferry::fetch", %id, "download failed verification: {msg}");
                for w in waiters {
                    let _ = w.send(Err(FetchError::Failed(id, msg.clone())));
                }
            }
        }
    }

    /// Ends a download of content the operator deleted, telling its waiters why.
    pub(super) fn cancel_download(&mut self, id: &ContentId) {
        let reason = self.deletion_reason(id).unwrap_or_else(|| "deleted".into());
        if let Some(d) = self.downloads.remove(id) {
            self.shared.transfer.download_ended(id, "failed");
            self.shared.clear_progress(id);
            let _ = self.index.remove_pending(id);
            for w in d.waiters {
                let _ = w.send(Err(FetchError::Deleted(reason.clone())));
            }
        }
        self.blob_requests.retain(|_, (c, _, _)| c != id);
    }

    /// Ends a download without an answer to its waiters (their receivers see the
    /// sender dropped). The verified chunks stay in the partial file.
    pub(super) fn abandon_download(&mut self, id: &ContentId) {
        if self.downloads.remove(id).is_some() {
            self.shared.clear_progress(id);
            let _ = self.index.remove_pending(id);
        }
        self.blob_requests.retain(|_, (c, _, _)| c != id);
    }

    /// Why the operator deleted `id` (directly or through its package or version).
    pub(super) fn deletion_reason(&self, id: &ContentId) -> Option<String> {
        let op = self.index.operator_state().ok()??;
        if let Some(t) = op.deletion("", None, Some(id)) {
            return Some(t.reason.clone());
        }
        let releases = self.index.releases_by_content(id).ok()?;
        releases.iter().find_map(|r| {
            op.deletion(
                &r.package.to_string(),
                Some(&r.version.to_string()),
                Some(id),
            )
            .map(|t| t.reason.clone())
        })
    }

    fn fail_download(&mut self, id: ContentId, e: FetchError) {
        if let Some(d) = self.downloads.remove(&id) {
            self.shared.transfer.download_ended(&id, "failed");
            self.shared.clear_progress(&id);
            let _ = self.index.remove_pending(&id);
            let msg = e.to_string();
            tracing::error!(target: "ferry::fetch", %id, "download failed: {msg}");
            for w in d.waiters {
                let _ = w.send(Err(FetchError::Failed(id, msg.clone())));
            }
        }
    }
}

//! Chunk responses: checked and written off the event loop.
//!
//! Hashing a 1 MiB chunk takes about a millisecond; at hundreds of MiB/s from several
//! providers that would keep the loop from reading the next responses. A chunk that
//! arrives is handed to a blocking thread, which verifies it against its digest,
//! writes it at its offset and advances the whole-blob hash; the result comes back on
//! a bounded channel. The chunk keeps its place in the download's window until it is
//! written, so at most `DOWNLOAD_WINDOW` chunks per download are ever held in memory,
//! while its provider is free for its next request at once.

use std::time::Instant;

use ferry_protocol::ContentId;
use ferry_protocol::wire::BlobResponse;
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::MAX_FAILURES;
use crate::blob_store::BlobError;
use crate::event_loop::EventLoop;

/// Chunk writes whose results may wait for the loop.
const WRITE_RESULTS: usize = 64;

/// A chunk checked and written (or refused) off the loop.
pub(in crate::event_loop) struct Written {
    id: ContentId,
    peer: PeerId,
    index: u64,
    len: u64,
    /// The chunk was already held when it arrived: it was fetched twice.
    held: bool,
    result: Result<(), BlobError>,
}

/// The channel of chunk write results.
pub(in crate::event_loop) struct Writes {
    tx: mpsc::Sender<Written>,
    /// Results, polled by the loop.
    pub(in crate::event_loop) rx: mpsc::Receiver<Written>,
}

impl Default for Writes {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(WRITE_RESULTS);
        Self { tx, rx }
    }
}

impl EventLoop {
    /// A chunk request ended: with a chunk, `NotFound`, or failed (`None`).
    pub(in crate::event_loop) fn on_chunk(
        &mut self,
        id: ContentId,
        peer: PeerId,
        index: u64,
        resp: Option<BlobResponse>,
    ) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        if let Some(p) = d.providers.get_mut(&peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
        let transfer = &self.shared.transfer;
        let who = peer.to_string();
        match resp {
            Some(BlobResponse::Chunk(bytes)) => {
                let held = d.partial.has_chunk(index);
                let writer = d.partial.writer();
                let tx = self.writes.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = writer.write(index, &bytes);
                    let _ = tx.blocking_send(Written {
                        id,
                        peer,
                        index,
                        len: bytes.len() as u64,
                        held,
                        result,
                    });
                });
            }
            Some(BlobResponse::NotFound) => {
                tracing::debug!(target: "ferry::fetch", %id, %peer, "peer lacks the blob");
                d.in_flight = d.in_flight.saturating_sub(1);
                transfer.provider_dropped(&id, &who, "does not hold the blob");
                d.providers.remove(&peer);
                d.excluded.insert(peer);
                d.queue.push_front(index);
            }
            None => {
                d.in_flight = d.in_flight.saturating_sub(1);
                transfer.request_failed(&id, &who);
                if let Some(p) = d.providers.get_mut(&peer) {
                    p.failures += 1;
                    if p.failures >= MAX_FAILURES {
                        transfer.provider_dropped(&id, &who, "requests kept failing");
                        d.providers.remove(&peer);
                    }
                }
                d.queue.push_front(index);
            }
        }
        self.schedule(id);
    }

    /// A chunk was checked and written, or refused.
    pub(in crate::event_loop) fn on_written(&mut self, w: Written) {
        let Some(d) = self.downloads.get_mut(&w.id) else {
            // The download finished as soon as every chunk was on disk, which can be
            // before this result was read: the chunk still crossed the network.
            if w.result.is_ok() {
                let who = w.peer.to_string();
                self.shared
                    .transfer
                    .chunk_received(&w.id, &who, w.len, w.held);
            }
            return;
        };
        d.in_flight = d.in_flight.saturating_sub(1);
        let transfer = &self.shared.transfer;
        let (id, peer, index) = (w.id, w.peer, w.index);
        let who = peer.to_string();
        match w.result {
            Ok(()) => {
                transfer.chunk_received(&id, &who, w.len, w.held);
                d.last_progress = Instant::now();
                self.shared
                    .set_progress(id, d.partial.done_bytes(), d.entry.size);
            }
            Err(BlobError::BadChunk { .. }) | Err(BlobError::OutOfRange { .. }) => {
                tracing::warn!(target: "ferry::fetch", %peer, %id, index, "peer sent a chunk that does not match its digest: dropping it");
                transfer.bad_chunk(&id, &who);
                transfer.provider_dropped(&id, &who, "sent a chunk that does not match its digest");
                d.providers.remove(&peer);
                d.excluded.insert(peer);
                d.queue.push_front(index);
                self.penalize(&peer);
            }
            Err(e) => {
                self.fail_download(id, e.into());
                return;
            }
        }
        let complete = self
            .downloads
            .get(&id)
            .is_some_and(|d| d.partial.is_complete());
        if complete {
            self.finish_download(id);
        } else {
            self.schedule(id);
        }
    }
}

//! Serving chunks to peers: read and re-verified off the event loop, bounded, and
//! optionally held to an upload rate.
//!
//! A chunk request is answered from a blocking thread that reads the chunk and hashes
//! it against the blob's stored digest list, so neither disk reads nor hashing stall
//! the loop, and a blob that rotted on disk is caught before a peer sees it: it is
//! quarantined, no longer provided, and the peer gets `NotFound` (it then asks another
//! provider). At most [`MAX_SERVING`] reads run at once and [`MAX_SERVE_QUEUE`] wait;
//! a request beyond that is dropped, which the requester sees as a failed request and
//! retries elsewhere.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_protocol::ContentId;
use ferry_protocol::wire::{BlobRequest, BlobResponse};
use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use super::EventLoop;
use crate::blob_store::BlobError;
use crate::swarm;

/// Chunk reads running at once.
pub const MAX_SERVING: usize = 8;
/// Chunk requests waiting for a read.
pub const MAX_SERVE_QUEUE: usize = 256;

/// A finished read, back on the loop.
pub(super) struct Served {
    content: ContentId,
    index: u64,
    peer: PeerId,
    channel: ResponseChannel<BlobResponse>,
    result: Result<Vec<u8>, BlobError>,
}

/// Serving state of the loop.
pub(super) struct Serving {
    tx: mpsc::Sender<Served>,
    /// Finished reads; polled by the loop.
    pub(super) rx: mpsc::Receiver<Served>,
    running: usize,
    queue: VecDeque<(PeerId, BlobRequest, ResponseChannel<BlobResponse>)>,
    limit: Option<Arc<RateLimit>>,
}

impl Serving {
    /// Serving with an optional upload limit in bytes per second.
    pub(super) fn new(max_upload_rate: Option<u64>) -> Self {
        // Every running read sends exactly one message: the channel never fills.
        let (tx, rx) = mpsc::channel(MAX_SERVING);
        Self {
            tx,
            rx,
            running: 0,
            queue: VecDeque::new(),
            limit: max_upload_rate
                .filter(|r| *r > 0)
                .map(|r| Arc::new(RateLimit::new(r))),
        }
    }
}

/// A token bucket shared by all serves: a chunk waits until the bytes sent before it
/// fit the rate. Bursts up to one second's worth.
pub(super) struct RateLimit {
    bytes_per_sec: f64,
    /// Bytes that may go now (negative: debt still being paid), as of the instant.
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec as f64;
        Self {
            bytes_per_sec: rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    /// How long to wait before sending `len` more bytes.
    fn reserve(&self, len: u64) -> Duration {
        let Ok(mut s) = self.state.lock() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.bytes_per_sec;
        s.0 = (s.0 + refill).min(self.bytes_per_sec) - len as f64;
        s.1 = now;
        if s.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.0 / self.bytes_per_sec)
        }
    }
}

impl EventLoop {
    /// A peer asks for a chunk.
    pub(super) fn on_blob_request(
        &mut self,
        peer: PeerId,
        request: BlobRequest,
        channel: ResponseChannel<BlobResponse>,
    ) {
        // Blobs of deleted content are removed when the tombstone arrives; this check
        // also covers a blob that raced in after it. A blob no release of this network
        // names (one held for a mirrored network) is not ours to hand out here.
        let c = &request.content;
        if self.deleted.contains(c) || !self.named.contains(c) || !self.blobs.has(c) {
            let _ = self
                .swarm
                .behaviour_mut()
                .blob
                .send_response(channel, BlobResponse::NotFound);
            return;
        }
        if self.serving.queue.len() >= MAX_SERVE_QUEUE {
            tracing::debug!(target: "ferry::serve", %peer, content = %request.content, "serve queue full: dropping a chunk request");
            self.shared.transfer.serve_refused();
            return;
        }
        self.serving.queue.push_back((peer, request, channel));
        self.pump_serving();
    }

    fn pump_serving(&mut self) {
        while self.serving.running < MAX_SERVING {
            let Some((peer, request, channel)) = self.serving.queue.pop_front() else {
                return;
            };
            self.serving.running += 1;
            let blobs = self.blobs.clone();
            let tx = self.serving.tx.clone();
            let limit = self.serving.limit.clone();
            tokio::spawn(async move {
                let (content, index) = (request.content, request.index);
                let result =
                    tokio::task::spawn_blocking(move || blobs.read_verified_chunk(&content, index))
                        .await
                        .unwrap_or(Err(BlobError::NotFound(content)));
                if let (Some(l), Ok(bytes)) = (&limit, &result) {
                    let wait = l.reserve(bytes.len() as u64);
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
                let _ = tx
                    .send(Served {
                        content,
                        index,
                        peer,
                        channel,
                        result,
                    })
                    .await;
            });
        }
    }

    /// A read finished: answer the peer.
    pub(super) fn on_served(&mut self, s: Served) {
        self.serving.running = self.serving.running.saturating_sub(1);
        let resp = match s.result {
            // Deleted while it was read.
            Ok(_) if self.deleted.contains(&s.content) => BlobResponse::NotFound,
            Ok(bytes) => {
                self.shared.transfer.chunk_served(bytes.len() as u64);
                BlobResponse::Chunk(ByteBuf::from(bytes))
            }
            Err(BlobError::Corrupt(id)) => {
                tracing::warn!(target: "ferry::serve", %id, index = s.index, peer = %s.peer, "stored blob no longer matches its content id: quarantined, not served (fetch it again to repair)");
                self.quarantine(&id);
                BlobResponse::NotFound
            }
            Err(_) => BlobResponse::NotFound,
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .blob
            .send_response(s.channel, resp);
        self.pump_serving();
    }

    /// Takes a corrupt blob out of service: moved aside, no longer provided.
    fn quarantine(&mut self, id: &ContentId) {
        match self.blobs.quarantine(id) {
            Ok(true) => self.shared.transfer.quarantined(),
            Ok(false) => {}
            Err(e) => tracing::error!(target: "ferry::blobs", %id, "quarantining: {e}"),
        }
        let key = swarm::blob_key(&self.network, id);
        self.swarm.behaviour_mut().kad.stop_providing(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_spreads_bytes_over_time() {
        let l = RateLimit::new(1 << 20);
        // A burst of one second's worth goes at once, the next MiB waits about a second.
        assert!(l.reserve(1 << 20).is_zero());
        let w = l.reserve(1 << 20);
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_secs(1),
            "{w:?}"
        );
        let w2 = l.reserve(1 << 19);
        assert!(w2 > w, "debt accumulates: {w2:?} after {w:?}");
    }
}

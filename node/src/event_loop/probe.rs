//! A window into the event loop for simulations and tests: what the loop applied and
//! stored, and how full its queues are. The daemon runs without one.

use ferry_protocol::ContentId;

use super::{EventLoop, MAX_DEFERRED};
use crate::index::ReleaseEntry;

/// Observes one event loop. Calls happen on the loop's task, so an implementation
/// must return quickly and never block (record a timestamp, bump a counter).
pub trait Probe: Send + Sync {
    /// A release record was applied to the index (by gossip, sync or a local publish).
    fn release_indexed(&self, _entry: &ReleaseEntry) {}
    /// A downloaded blob passed its final check and is stored.
    fn blob_stored(&self, _content: &ContentId) {}
    /// The loop's queue depths, reported once per fetch tick (every second).
    fn queues(&self, _depths: &QueueDepths) {}
}

/// How many entries the event loop's internal queues and tables hold right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Connected peers.
    pub connected: usize,
    /// Gossiped records held for a second look.
    pub deferred: usize,
    /// Sync requests awaiting an answer.
    pub sync_in_flight: usize,
    /// Peers with a heads request outstanding.
    pub heads_pending: usize,
    /// Running downloads (before their final check).
    pub downloads: usize,
    /// Chunk requests awaiting an answer.
    pub blob_requests: usize,
    /// DHT provider queries running.
    pub provider_queries: usize,
}

impl QueueDepths {
    /// Checks the bounds the loop promises: at most [`MAX_DEFERRED`] deferred records,
    /// and at most one heads request per connected peer.
    pub fn check(&self) -> Result<(), String> {
        if self.deferred > MAX_DEFERRED {
            return Err(format!(
                "{} deferred records, over the bound of {MAX_DEFERRED}",
                self.deferred
            ));
        }
        if self.heads_pending > self.connected {
            return Err(format!(
                "{} heads requests pending with {} peers connected",
                self.heads_pending, self.connected
            ));
        }
        Ok(())
    }
}

impl EventLoop {
    pub(super) fn probe_release(&self, entry: &ReleaseEntry) {
        if let Some(p) = &self.probe {
            p.release_indexed(entry);
        }
    }

    pub(super) fn probe_blob(&self, content: &ContentId) {
        if let Some(p) = &self.probe {
            p.blob_stored(content);
        }
    }

    pub(super) fn probe_queues(&self) {
        if let Some(p) = &self.probe {
            p.queues(&QueueDepths {
                connected: self.connected.len(),
                deferred: self.deferred.len(),
                sync_in_flight: self.sync.in_flight_len(),
                heads_pending: self.sync.heads_pending_len(),
                downloads: self.downloads.len(),
                blob_requests: self.blob_requests.len(),
                provider_queries: self.provider_queries.len(),
            });
        }
    }
}

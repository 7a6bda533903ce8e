//! What the nodes report while the run goes: when each node indexed each release and
//! stored each blob, the deepest its queues got, and any bound they broke.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_node::event_loop::{Probe, QueueDepths};
use ferry_node::index::ReleaseEntry;
use ferry_protocol::{ContentId, RecordId};
use serde::Serialize;

/// Most broken-bound messages kept (the count goes on).
const MAX_VIOLATIONS_KEPT: usize = 32;

/// The deepest each queue got on any node.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MaxDepths {
    /// Connected peers.
    pub connected: usize,
    /// Gossiped records held for a second look.
    pub deferred: usize,
    /// Sync requests in flight.
    pub sync_in_flight: usize,
    /// Running downloads.
    pub downloads: usize,
    /// Chunk requests in flight.
    pub blob_requests: usize,
    /// DHT provider queries.
    pub provider_queries: usize,
    /// Longest gap between two queue reports of one node, in milliseconds (they are due
    /// every second): how long an event loop was kept from its timers.
    pub loop_gap_ms: u64,
}

#[derive(Default)]
struct Inner {
    indexed: HashMap<(usize, RecordId), Instant>,
    stored: HashMap<(usize, ContentId), Instant>,
    max: MaxDepths,
    violations: Vec<String>,
    violation_count: usize,
}

/// Observations of every node of a run, keyed by node index.
#[derive(Default)]
pub struct Observations {
    inner: Mutex<Inner>,
}

impl Observations {
    /// A probe for node `node`.
    pub fn probe(self: &Arc<Self>, node: usize) -> Arc<NodeProbe> {
        Arc::new(NodeProbe {
            node,
            obs: self.clone(),
            last_report: Mutex::new(None),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut g| f(&mut g))
    }

    /// Notes that `node` stored `content` now (a publisher storing its own blob).
    pub fn stored(&self, node: usize, content: ContentId) {
        let now = Instant::now();
        self.with(|i| {
            i.stored.entry((node, content)).or_insert(now);
        });
    }

    /// When `node` holds release `record` with blob `content`: both the record indexed
    /// and the blob stored.
    pub fn held_at(&self, node: usize, record: RecordId, content: ContentId) -> Option<Instant> {
        self.with(|i| {
            let a = i.indexed.get(&(node, record))?;
            let b = i.stored.get(&(node, content))?;
            Some(*a.max(b))
        })
        .flatten()
    }

    /// When `node` indexed `record`.
    pub fn indexed_at(&self, node: usize, record: RecordId) -> Option<Instant> {
        self.with(|i| i.indexed.get(&(node, record)).copied())
            .flatten()
    }

    /// The deepest queues seen.
    pub fn max_depths(&self) -> MaxDepths {
        self.with(|i| i.max).unwrap_or_default()
    }

    /// Broken bounds: how many, and the first few.
    pub fn violations(&self) -> (usize, Vec<String>) {
        self.with(|i| (i.violation_count, i.violations.clone()))
            .unwrap_or_default()
    }

    /// Records a broken invariant found outside the probe (e.g. a bad blob).
    pub fn violation(&self, what: String) {
        self.with(|i| {
            i.violation_count += 1;
            if i.violations.len() < MAX_VIOLATIONS_KEPT {
                i.violations.push(what);
            }
        });
    }
}

/// The probe of one node.
pub struct NodeProbe {
    node: usize,
    obs: Arc<Observations>,
    last_report: Mutex<Option<Instant>>,
}

impl Probe for NodeProbe {
    fn release_indexed(&self, entry: &ReleaseEntry) {
        let now = Instant::now();
        self.obs.with(|i| {
            i.indexed.entry((self.node, entry.record)).or_insert(now);
        });
    }

    fn blob_stored(&self, content: &ContentId) {
        self.obs.stored(self.node, *content);
    }

    fn queues(&self, d: &QueueDepths) {
        let broken = d.check().err();
        let now = Instant::now();
        let gap = self
            .last_report
            .lock()
            .ok()
            .and_then(|mut l| l.replace(now))
            .map_or(0, |t| now.duration_since(t).as_millis() as u64);
        self.obs.with(|i| {
            let m = &mut i.max;
            m.connected = m.connected.max(d.connected);
            m.deferred = m.deferred.max(d.deferred);
            m.sync_in_flight = m.sync_in_flight.max(d.sync_in_flight);
            m.downloads = m.downloads.max(d.downloads);
            m.blob_requests = m.blob_requests.max(d.blob_requests);
            m.provider_queries = m.provider_queries.max(d.provider_queries);
            m.loop_gap_ms = m.loop_gap_ms.max(gap);
            if let Some(why) = broken {
                i.violation_count += 1;
                if i.violations.len() < MAX_VIOLATIONS_KEPT {
                    i.violations.push(format!("node {}: {why}", self.node));
                }
            }
        });
    }
}

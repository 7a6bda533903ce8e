//! Fetching what a node pins: whenever the node indexes a release in a namespace it
//! pins, fetch its blob through the node's own download machinery.
//!
//! This stands in for the node's pins until they reach this branch; it drives the same
//! `Fetch` command a user's `ferry fetch` sends, with bounded concurrency.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferry_node::blob_store::BlobStore;
use ferry_node::command::NodeHandle;
use ferry_node::index::{Index, ReleaseEntry};
use ferry_protocol::{ContentId, Namespace};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Downloads one node runs at once.
const MAX_CONCURRENT_FETCHES: usize = 8;
/// How often the index is scanned even without a new release (failed fetches retry).
const RESCAN: Duration = Duration::from_secs(2);

/// The releases of `pins` whose blob `blobs` lacks.
pub fn missing(index: &Index, blobs: &BlobStore, pins: &BTreeSet<Namespace>) -> Vec<ReleaseEntry> {
    let Ok(packages) = index.packages() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in packages.iter().filter(|p| pins.contains(p.namespace())) {
        for r in index.releases(p).unwrap_or_default() {
            if !blobs.has(&r.content) {
                out.push(r);
            }
        }
    }
    out
}

/// Runs until aborted: fetches every pinned blob the node lacks.
pub async fn run(
    handle: NodeHandle,
    index: Arc<Index>,
    blobs: Arc<BlobStore>,
    pins: BTreeSet<Namespace>,
    wake: Arc<Notify>,
) {
    let mut running: JoinSet<ContentId> = JoinSet::new();
    let mut in_flight: HashSet<ContentId> = HashSet::new();
    loop {
        for entry in missing(&index, &blobs, &pins) {
            if running.len() >= MAX_CONCURRENT_FETCHES {
                break;
            }
            if in_flight.insert(entry.content) {
                let h = handle.clone();
                running.spawn(async move {
                    let id = entry.content;
                    if let Err(e) = h.fetch(entry).await {
                        tracing::debug!(target: "ferry::sim", %id, "fetch failed, retrying later: {e}");
                    }
                    id
                });
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(RESCAN) => {}
            Some(done) = running.join_next() => {
                if let Ok(id) = done {
                    in_flight.remove(&id);
                }
            }
        }
    }
}

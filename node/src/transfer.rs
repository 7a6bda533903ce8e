//! Transfer accounting: blob bytes and chunks received from and served to peers, cache
//! hits, and per-download figures.
//!
//! The counters are what tests and operators read to know what crossed the network: a
//! fetch answered from the cache leaves `received_bytes` unchanged, a resumed download
//! shows how much came from its partial file and how much was fetched again. They live
//! in memory and start at zero with the process; `GET /v1/status` shows them as JSON
//! and `GET /metrics` in Prometheus text format.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_protocol::ContentId;
use serde::Serialize;

/// Downloads whose figures are kept (the oldest finished ones are forgotten first).
pub const MAX_TRACKED_DOWNLOADS: usize = 256;
/// Providers listed per download.
pub const MAX_TRACKED_PROVIDERS: usize = 64;

/// Node-wide counters since start.
#[derive(Debug, Default)]
pub struct Transfer {
    received_bytes: AtomicU64,
    received_chunks: AtomicU64,
    bad_chunks: AtomicU64,
    duplicate_chunks: AtomicU64,
    served_bytes: AtomicU64,
    served_chunks: AtomicU64,
    serve_refused: AtomicU64,
    local_bytes: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    quarantined: AtomicU64,
    downloads: Mutex<Downloads>,
}

#[derive(Debug, Default)]
struct Downloads {
    by_id: HashMap<ContentId, DownloadStats>,
    /// Insertion order, for eviction.
    order: VecDeque<ContentId>,
}

/// What one provider did for one download.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProviderStats {
    /// Verified chunks it sent.
    pub chunks: u64,
    /// Bytes of those chunks.
    pub bytes: u64,
    /// Chunks it sent that did not match their digest.
    pub bad_chunks: u64,
    /// Requests that failed (timeout, closed connection).
    pub failures: u64,
    /// Why it was dropped from the download, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
}

/// Figures of one blob's download(s) since start.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadStats {
    /// The blob.
    pub cid: String,
    /// What it is, e.g. `acme:app@1.0.0`.
    pub label: String,
    /// `running`, `complete`, `failed` or `stalled`.
    pub state: &'static str,
    /// Blob size.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// How often a download of it was started (a restart resumes with a new attempt).
    pub attempts: u64,
    /// Chunks the latest attempt found verified in its partial file.
    pub resumed_chunks: u64,
    /// Bytes of those chunks.
    pub resumed_bytes: u64,
    /// Verified chunks received from peers.
    pub received_chunks: u64,
    /// Bytes of those chunks.
    pub received_bytes: u64,
    /// Chunks received that were already held (fetched twice).
    pub duplicate_chunks: u64,
    /// Chunks refused because they did not match their digest.
    pub bad_chunks: u64,
    /// Milliseconds from the start of the latest attempt to its latest verified chunk:
    /// the transfer alone, without the final whole-blob check.
    pub transfer_ms: u64,
    /// Per provider (peer id).
    pub providers: BTreeMap<String, ProviderStats>,
    #[serde(skip)]
    started: Option<std::time::Instant>,
}

/// A snapshot of the node-wide counters.
#[derive(Debug, Clone, Serialize)]
pub struct TransferView {
    /// Verified chunk bytes received from peers.
    pub received_bytes: u64,
    /// Verified chunks received from peers.
    pub received_chunks: u64,
    /// Chunks refused for not matching their digest.
    pub bad_chunks: u64,
    /// Chunks received that were already held.
    pub duplicate_chunks: u64,
    /// Chunk bytes served to peers.
    pub served_bytes: u64,
    /// Chunks served to peers.
    pub served_chunks: u64,
    /// Chunk requests turned away because too many were queued.
    pub serve_refused: u64,
    /// Blob bytes streamed to local clients (`ferry fetch`, installs).
    pub local_bytes: u64,
    /// Fetches answered from stored, re-verified blobs.
    pub cache_hits: u64,
    /// Fetches that had to download.
    pub cache_misses: u64,
    /// Stored blobs found corrupt and moved aside.
    pub quarantined: u64,
    /// Recent downloads, newest last.
    pub downloads: Vec<DownloadStats>,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Transfer {
    fn with<R>(&self, id: &ContentId, f: impl FnOnce(&mut DownloadStats) -> R) -> Option<R> {
        let mut d = self.downloads.lock().ok()?;
        d.by_id.get_mut(id).map(f)
    }

    /// A download of `id` starts (or resumes with `resumed_chunks` already on disk).
    pub fn download_started(
        &self,
        id: ContentId,
        label: String,
        size: u64,
        resumed_chunks: u64,
        resumed_bytes: u64,
    ) {
        let Ok(mut guard) = self.downloads.lock() else {
            return;
        };
        let d = &mut *guard;
        if !d.by_id.contains_key(&id) {
            while d.order.len() >= MAX_TRACKED_DOWNLOADS {
                // Forget the oldest download that is not running; if all are, the oldest.
                let pos = d
                    .order
                    .iter()
                    .position(|o| d.by_id.get(o).is_none_or(|s| s.state != "running"))
                    .unwrap_or(0);
                if let Some(old) = d.order.remove(pos) {
                    d.by_id.remove(&old);
                }
            }
            d.order.push_back(id);
            d.by_id.insert(
                id,
                DownloadStats {
                    cid: id.to_string(),
                    label: String::new(),
                    state: "running",
                    size,
                    chunks: ferry_protocol::chunk::count(size, ferry_protocol::chunk::CHUNK_SIZE),
                    attempts: 0,
                    resumed_chunks: 0,
                    resumed_bytes: 0,
                    received_chunks: 0,
                    received_bytes: 0,
                    duplicate_chunks: 0,
                    bad_chunks: 0,
                    transfer_ms: 0,
                    providers: BTreeMap::new(),
                    started: None,
                },
            );
        }
        if let Some(s) = d.by_id.get_mut(&id) {
            s.label = label;
            s.state = "running";
            s.attempts += 1;
            s.resumed_chunks = resumed_chunks;
            s.resumed_bytes = resumed_bytes;
            s.started = Some(std::time::Instant::now());
            s.transfer_ms = 0;
        }
    }

    fn provider<'a>(s: &'a mut DownloadStats, peer: &str) -> Option<&'a mut ProviderStats> {
        if !s.providers.contains_key(peer) && s.providers.len() >= MAX_TRACKED_PROVIDERS {
            return None;
        }
        Some(s.providers.entry(peer.to_string()).or_default())
    }

    /// A verified chunk of `len` bytes arrived from `peer`; `duplicate` if it was held.
    pub fn chunk_received(&self, id: &ContentId, peer: &str, len: u64, duplicate: bool) {
        add(&self.received_bytes, len);
        add(&self.received_chunks, 1);
        if duplicate {
            add(&self.duplicate_chunks, 1);
        }
        self.with(id, |s| {
            s.received_chunks += 1;
            s.received_bytes += len;
            if let Some(t) = s.started {
                s.transfer_ms = t.elapsed().as_millis() as u64;
            }
            if duplicate {
                s.duplicate_chunks += 1;
            }
            if let Some(p) = Self::provider(s, peer) {
                p.chunks += 1;
                p.bytes += len;
            }
        });
    }

    /// `peer` sent a chunk that does not match its digest.
    pub fn bad_chunk(&self, id: &ContentId, peer: &str) {
        add(&self.bad_chunks, 1);
        self.with(id, |s| {
            s.bad_chunks += 1;
            if let Some(p) = Self::provider(s, peer) {
                p.bad_chunks += 1;
            }
        });
    }

    /// A chunk request to `peer` failed.
    pub fn request_failed(&self, id: &ContentId, peer: &str) {
        self.with(id, |s| {
            if let Some(p) = Self::provider(s, peer) {
                p.failures += 1;
            }
        });
    }

    /// `peer` was dropped from the download of `id`, for `why`.
    pub fn provider_dropped(&self, id: &ContentId, peer: &str, why: &str) {
        self.with(id, |s| {
            if let Some(p) = Self::provider(s, peer) {
                p.dropped = Some(why.to_string());
            }
        });
    }

    /// The download of `id` ended in `state` (`complete`, `failed`, `stalled`).
    pub fn download_ended(&self, id: &ContentId, state: &'static str) {
        self.with(id, |s| s.state = state);
    }

    /// A chunk of `len` bytes was served to a peer.
    pub fn chunk_served(&self, len: u64) {
        add(&self.served_bytes, len);
        add(&self.served_chunks, 1);
    }

    /// A chunk request was turned away (queue full).
    pub fn serve_refused(&self) {
        add(&self.serve_refused, 1);
    }

    /// Bytes streamed to a local client.
    pub fn local_served(&self, len: u64) {
        add(&self.local_bytes, len);
    }

    /// A fetch found its blob stored and intact.
    pub fn cache_hit(&self) {
        add(&self.cache_hits, 1);
    }

    /// A fetch had to download its blob.
    pub fn cache_miss(&self) {
        add(&self.cache_misses, 1);
    }

    /// A stored blob was found corrupt and moved aside.
    pub fn quarantined(&self) {
        add(&self.quarantined, 1);
    }

    /// The figures of one blob's download, if it is tracked.
    pub fn download(&self, id: &ContentId) -> Option<DownloadStats> {
        self.downloads.lock().ok()?.by_id.get(id).cloned()
    }

    /// A snapshot of every counter.
    pub fn view(&self) -> TransferView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let downloads = self
            .downloads
            .lock()
            .map(|d| {
                d.order
                    .iter()
                    .filter_map(|id| d.by_id.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default();
        TransferView {
            received_bytes: get(&self.received_bytes),
            received_chunks: get(&self.received_chunks),
            bad_chunks: get(&self.bad_chunks),
            duplicate_chunks: get(&self.duplicate_chunks),
            served_bytes: get(&self.served_bytes),
            served_chunks: get(&self.served_chunks),
            serve_refused: get(&self.serve_refused),
            local_bytes: get(&self.local_bytes),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            quarantined: get(&self.quarantined),
            downloads,
        }
    }

    /// The counters in Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let v = self.view();
        let mut out = String::new();
        let counters: [(&str, &str, u64); 11] = [
            (
                "ferry_blob_received_bytes_total",
                "Verified blob chunk bytes received from peers.",
                v.received_bytes,
            ),
            (
                "ferry_blob_received_chunks_total",
                "Verified blob chunks received from peers.",
                v.received_chunks,
            ),
            (
                "ferry_blob_bad_chunks_total",
                "Chunks refused because they did not match their digest.",
                v.bad_chunks,
            ),
            (
                "ferry_blob_duplicate_chunks_total",
                "Chunks received that were already held.",
                v.duplicate_chunks,
            ),
            (
                "ferry_blob_served_bytes_total",
                "Blob chunk bytes served to peers.",
                v.served_bytes,
            ),
            (
                "ferry_blob_served_chunks_total",
                "Blob chunks served to peers.",
                v.served_chunks,
            ),
            (
                "ferry_blob_serve_refused_total",
                "Chunk requests turned away because the serve queue was full.",
                v.serve_refused,
            ),
            (
                "ferry_blob_local_bytes_total",
                "Blob bytes streamed to local clients.",
                v.local_bytes,
            ),
            (
                "ferry_cache_hits_total",
                "Fetches answered from a stored, re-verified blob.",
                v.cache_hits,
            ),
            (
                "ferry_cache_misses_total",
                "Fetches that had to download their blob.",
                v.cache_misses,
            ),
            (
                "ferry_blob_quarantined_total",
                "Stored blobs found corrupt and moved aside.",
                v.quarantined,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let running = v.downloads.iter().filter(|d| d.state == "running").count();
        let _ = writeln!(
            out,
            "# HELP ferry_downloads_running Blob downloads in progress.\n# TYPE ferry_downloads_running gauge\nferry_downloads_running {running}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_download_and_overall() {
        let t = Transfer::default();
        let id = ContentId::of(b"x");
        t.download_started(id, "a:b@1.0.0".into(), 3 << 20, 1, 1 << 20);
        t.chunk_received(&id, "p1", 1 << 20, false);
        t.bad_chunk(&id, "p2");
        t.provider_dropped(&id, "p2", "bad chunk");
        t.chunk_received(&id, "p1", 1 << 20, true);
        t.download_ended(&id, "complete");
        let d = t.download(&id).expect("tracked");
        assert_eq!(
            (d.received_chunks, d.duplicate_chunks, d.bad_chunks),
            (2, 1, 1)
        );
        assert_eq!((d.resumed_chunks, d.chunks, d.state), (1, 3, "complete"));
        assert_eq!(d.providers["p2"].dropped.as_deref(), Some("bad chunk"));
        assert_eq!(d.providers["p1"].bytes, 2 << 20);
        let v = t.view();
        assert_eq!((v.received_bytes, v.bad_chunks), (2 << 20, 1));
        let text = t.prometheus();
        assert!(text.contains(&format!("ferry_blob_received_bytes_total {}", 2 << 20)));
        assert!(text.contains("ferry_downloads_running 0"));
    }

    #[test]
    fn tracking_is_bounded() {
        let t = Transfer::default();
        for i in 0..(MAX_TRACKED_DOWNLOADS as u32 + 10) {
            let id = ContentId::of(&i.to_le_bytes());
            t.download_started(id, String::new(), 1, 0, 0);
            t.download_ended(&id, "complete");
        }
        assert_eq!(t.view().downloads.len(), MAX_TRACKED_DOWNLOADS);
        assert!(t.download(&ContentId::of(&0u32.to_le_bytes())).is_none());
    }
}

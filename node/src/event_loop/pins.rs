//! Pins in the event loop: which topics to subscribe to, which logs to follow, and
//! the downloads a node starts on its own for the releases its pins admit.
//!
//! Pins take effect live. Adding one subscribes to the namespaces it covers, syncs
//! with every peer at once (so the newly covered logs arrive without waiting for the
//! next round) and queues the blobs of the releases it admits; removing one
//! unsubscribes and stops the downloads only it wanted. Its blobs stay until garbage
//! collection frees them, so a pin removed by mistake costs nothing to put back.
//!
//! Pinned downloads go newest release first, at most [`MAX_PIN_FETCHES`] at a time,
//! from a queue of at most [`MAX_PIN_QUEUE`] blobs. The queue is only a cache of what
//! the index says is wanted: when it overflows, or a download fails, the node rescans
//! the index later instead of remembering more.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use ferry_protocol::filter::{Candidate, Pattern};
use ferry_protocol::pin::Pin;
use ferry_protocol::{ContentId, Namespace};
use tokio::sync::{mpsc, oneshot};

use super::EventLoop;
use crate::command::PinError;
use crate::index::{ReleaseEntry, release_blobs};
use crate::node::now_ms;
use crate::swarm;

/// Pinned downloads running at once.
pub const MAX_PIN_FETCHES: usize = 4;
/// Pinned blobs queued for download; more are found again by a later rescan.
pub const MAX_PIN_QUEUE: usize = 4096;
/// Wait before looking again for pinned blobs whose download failed.
const PIN_RETRY: Duration = Duration::from_secs(10);

/// Queue key: newest release first, then by content id for a stable order.
type QueueKey = (Reverse<u64>, ContentId);

/// Pinned downloads: what waits, what runs, when to look again.
pub(super) struct PinState {
    /// Pinned blobs waiting for a download slot, newest release first.
    queue: BTreeMap<QueueKey, ReleaseEntry>,
    /// Pinned downloads running.
    active: HashSet<ContentId>,
    /// The queue overflowed: rescan the index once it drains.
    rescan: bool,
    /// When to look again for pinned blobs whose download failed.
    retry_at: Option<Instant>,
    done_tx: mpsc::Sender<(ContentId, bool)>,
    /// Each pinned download ends with one message here.
    pub(super) done_rx: mpsc::Receiver<(ContentId, bool)>,
}

impl PinState {
    pub(super) fn new() -> Self {
        // At most MAX_PIN_FETCHES downloads run, each sending one message.
        let (done_tx, done_rx) = mpsc::channel(2 * MAX_PIN_FETCHES);
        Self {
            queue: BTreeMap::new(),
            active: HashSet::new(),
            rescan: false,
            retry_at: None,
            done_tx,
            done_rx,
        }
    }
}

impl EventLoop {
    /// Subscribes to the topics of the namespaces the pins follow (all of them without
    /// pins) and unsubscribes from the others.
    pub(super) fn update_subscriptions(&mut self) {
        let Ok(Some(op)) = self.index.operator_state() else {
            return;
        };
        let wanted: BTreeSet<Namespace> = op
            .namespaces
            .keys()
            .filter(|ns| self.pins.follows_namespace(ns.as_str()))
            .cloned()
            .collect();
        for ns in self
            .subscribed
            .difference(&wanted)
            .cloned()
            .collect::<Vec<_>>()
        {
            let t = swarm::namespace_topic(&self.network, &ns);
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&t);
            tracing::info!(target: "ferry::pins", namespace = %ns, "unsubscribed: no pin covers it");
        }
        for ns in wanted
            .difference(&self.subscribed)
            .cloned()
            .collect::<Vec<_>>()
        {
            let t = swarm::namespace_topic(&self.network, &ns);
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&t) {
                tracing::warn!(target: "ferry::gossip", "subscribing to {t}: {e}");
            }
        }
        self.subscribed = wanted;
    }

    /// Whether `log` is a package log that the pins leave out. Anything else (the
    /// operator log, attester logs, and names that are not logs at all) goes through
    /// validation as before, so a peer sending malformed records still pays for them.
    pub(super) fn unfollowed(&self, log: &str) -> bool {
        log.parse::<ferry_protocol::PackageName>()
            .is_ok_and(|p| !self.pins.follows_package(&p))
    }

    pub(super) fn add_pin(&mut self, pin: Pin) -> Result<bool, PinError> {
        let replaced = self.index.put_pin(&pin, now_ms())?;
        tracing::info!(target: "ferry::pins", pattern = %pin.pattern(), "pinned");
        self.pins.insert(pin);
        self.pins_changed();
        Ok(replaced)
    }

    pub(super) fn remove_pin(&mut self, pattern: &Pattern) -> Result<(), PinError> {
        if !self.index.remove_pin(pattern)? {
            return Err(PinError::NotPinned(pattern.to_string()));
        }
        tracing::info!(target: "ferry::pins", %pattern, "unpinned");
        self.pins.remove(pattern);
        self.pins_changed();
        Ok(())
    }

    fn pins_changed(&mut self) {
        self.update_subscriptions();
        self.rescan_pins();
        // Stop what only a removed pin wanted; a user's fetch of the same blob goes on.
        let pinned: BTreeSet<ContentId> = match self.index.pinned_blobs(&self.pins) {
            Ok(b) => b.into_iter().map(|b| b.content).collect(),
            Err(e) => {
                tracing::error!(target: "ferry::index", "{e}");
                return;
            }
        };
        let stale: Vec<ContentId> = self
            .pinned
            .active
            .iter()
            .filter(|id| !pinned.contains(id))
            .copied()
            .collect();
        for id in stale {
            self.stop_pinned_download(&id);
        }
        self.sync_all();
    }

    /// Rebuilds the download queue from the index: every pinned blob not stored yet.
    pub(super) fn rescan_pins(&mut self) {
        self.pinned.queue.clear();
        self.pinned.rescan = false;
        self.pinned.retry_at = None;
        let blobs = match self.index.pinned_blobs(&self.pins) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(target: "ferry::index", "{e}");
                return;
            }
        };
        for b in blobs {
            if self.blobs.has(&b.content) || self.pinned.active.contains(&b.content) {
                continue;
            }
            self.queue_pinned(b.entry);
        }
        self.pump_pins();
    }

    /// A new release: queue its blobs if a pin admits it.
    pub(super) fn on_release_for_pins(&mut self, entry: &ReleaseEntry) {
        if self.pins.is_empty() || !self.pins.follows_package(&entry.package) {
            return;
        }
        let c = Candidate {
            package: &entry.package,
            license: entry.license.as_deref(),
            signer: &entry.publisher,
            size: entry.size,
        };
        let Ok(pin) = self.pins.admits(&c) else {
            return;
        };
        let max = pin.filter().max_size;
        for b in release_blobs(entry) {
            if max.is_some_and(|m| b.size > m) || self.blobs.has(&b.content) {
                continue;
            }
            if self.deletion_reason(&b.content).is_some() {
                continue;
            }
            self.queue_pinned(b);
        }
        self.pump_pins();
    }

    fn queue_pinned(&mut self, entry: ReleaseEntry) {
        if self.pinned.queue.len() >= MAX_PIN_QUEUE {
            // Drop the oldest; a rescan finds it again once the queue has room.
            self.pinned.queue.pop_last();
            self.pinned.rescan = true;
        }
        self.pinned
            .queue
            .insert((Reverse(entry.time_ms), entry.content), entry);
    }

    /// Starts queued pinned downloads up to [`MAX_PIN_FETCHES`].
    pub(super) fn pump_pins(&mut self) {
        while self.pinned.active.len() < MAX_PIN_FETCHES {
            let Some((_, entry)) = self.pinned.queue.pop_first() else {
                break;
            };
            let id = entry.content;
            if self.blobs.has(&id) || self.pinned.active.contains(&id) || self.deleted.contains(&id)
            {
                continue;
            }
            tracing::debug!(target: "ferry::fetch", content = %id, "fetching pinned {}@{}", entry.package, entry.version);
            let (tx, rx) = oneshot::channel();
            self.pinned.active.insert(id);
            let done = self.pinned.done_tx.clone();
            tokio::spawn(async move {
                let ok = matches!(rx.await, Ok(Ok(())));
                let _ = done.send((id, ok)).await;
            });
            self.start_fetch(entry, tx);
        }
        if self.pinned.queue.is_empty() && self.pinned.active.is_empty() && self.pinned.rescan {
            self.rescan_pins();
        }
    }

    /// A pinned download ended.
    pub(super) fn on_pin_done(&mut self, id: ContentId, ok: bool) {
        self.pinned.active.remove(&id);
        if !ok && !self.pins.is_empty() {
            // No provider yet (the publisher's announcement may still be travelling):
            // look again a little later.
            self.pinned
                .retry_at
                .get_or_insert(Instant::now() + PIN_RETRY);
        }
        self.pump_pins();
    }

    /// Called every fetch tick: retries failed pinned downloads when due.
    pub(super) fn pins_tick(&mut self) {
        if self
            .pinned
            .retry_at
            .is_some_and(|t| Instant::now() >= t && self.pinned.active.len() < MAX_PIN_FETCHES)
        {
            self.rescan_pins();
        } else {
            self.pump_pins();
        }
    }

    /// Ends a pinned download nobody else waits for.
    fn stop_pinned_download(&mut self, id: &ContentId) {
        if let Some(d) = self.downloads.get_mut(id) {
            d.waiters.retain(|w| !w.is_closed());
            // One waiter is the pin's own; any other is a user's fetch.
            if d.waiters.len() <= 1 {
                self.abandon_download(id);
                tracing::info!(target: "ferry::pins", content = %id, "stopped: no pin wants it any more");
            }
        }
    }
}

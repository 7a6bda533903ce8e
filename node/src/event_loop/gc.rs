//! Garbage collection on the event loop, beside everything else the node does.
//!
//! The loop owns downloads and answers peers' chunk requests itself, so deciding and
//! removing here, between two events, can never race a download or a peer serve. The
//! API's own readers (`/v1/blobs`, summary checks) run on other tasks: they mark the
//! blob in [`crate::node::Shared::serving`] before opening it, and removal takes the
//! same lock. The plan itself is the pure [`ferry_protocol::retention::plan`].

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use ferry_protocol::ContentId;
use ferry_protocol::retention::{self, Holds, Reason, Stored};

use super::EventLoop;
use crate::command::{FreedBlob, GcError, GcReport};
use crate::node::now_ms;
use crate::swarm;

/// A cache entry used this recently is not evicted by the disk budget: the user who
/// just fetched it may not have read it yet (the CLI fetches, then reads).
const CACHE_GRACE: Duration = Duration::from_secs(10);
/// How often a node with a disk budget checks its store when nothing was stored.
const BUDGET_CHECK: Duration = Duration::from_secs(60);
/// How soon to check again when a collection left the store over budget: recently used
/// cache entries become evictable once their grace period ends.
const OVER_BUDGET_RECHECK: Duration = Duration::from_secs(2);

impl EventLoop {
    /// Gathers every stored blob and partial download with its holds.
    fn holdings(&self) -> Result<BTreeMap<(ContentId, bool), Stored>, GcError> {
        let mut pinned: HashSet<ContentId> = self
            .index
            .pinned_blobs(&self.pins)?
            .into_iter()
            .map(|b| b.content)
            .collect();
        // The node's mirrors share this store: what they need counts as pinned here.
        if let Some(m) = &self.mirrors {
            pinned.extend(m.held_blobs()?);
        }
        let published = self.index.published()?;
        let cache = self.index.cache()?;
        let served: HashSet<ContentId> = self.shared.served().into_iter().collect();
        let holds = |id: &ContentId| Holds {
            pinned: pinned.contains(id),
            published: published.contains(id),
            cache: cache.get(id).copied(),
            in_flight: self.downloads.contains_key(id)
                || self.finishing.contains_key(id)
                || served.contains(id),
        };
        let mut out = BTreeMap::new();
        for id in self.blobs.list() {
            let bytes = self.blobs.size(&id).unwrap_or(0);
            out.insert(
                (id, false),
                Stored {
                    bytes,
                    holds: holds(&id),
                },
            );
        }
        // A partial download nobody runs or holds is garbage too; one that a pin or the
        // cache still wants stays, so a later fetch resumes from it.
        for id in self.blobs.partials() {
            let bytes = self.blobs.partial_size(&id).unwrap_or(0);
            out.insert(
                (id, true),
                Stored {
                    bytes,
                    holds: holds(&id),
                },
            );
        }
        Ok(out)
    }

    /// Plans a collection and, unless `dry_run`, applies it.
    pub(super) fn collect(&mut self, dry_run: bool) -> Result<GcReport, GcError> {
        let holdings = self.holdings()?;
        let plan = retention::plan(
            &holdings,
            self.disk_budget,
            now_ms(),
            CACHE_GRACE.as_millis() as u64,
        );
        let mut report = GcReport {
            dry_run,
            budget: self.disk_budget,
            ..GcReport::default()
        };
        let mut evicted = Vec::new();
        let mut kept_back = 0u64;
        for ((id, partial), reason) in plan.free {
            let bytes = holdings.get(&(id, partial)).map_or(0, |s| s.bytes);
            if !dry_run {
                let removed = self.shared.remove_unless_serving(&id, || {
                    if partial {
                        self.blobs.remove_partial(&id)
                    } else {
                        self.blobs.remove(&id)
                    }
                });
                match removed {
                    None => {
                        report.in_use += 1;
                        kept_back += bytes;
                        continue;
                    }
                    Some(Err(e)) => {
                        tracing::error!(target: "ferry::gc", %id, "removing: {e}");
                        kept_back += bytes;
                        continue;
                    }
                    Some(Ok(_)) => {}
                }
                if !partial {
                    let key = swarm::blob_key(&self.network, &id);
                    self.swarm.behaviour_mut().kad.stop_providing(&key);
                }
                if reason == Reason::Evicted {
                    evicted.push(id);
                }
            }
            report.count += 1;
            report.bytes += bytes;
            report.freed.push(FreedBlob {
                cid: id.to_string(),
                bytes,
                reason,
                partial,
            });
        }
        if !evicted.is_empty() {
            self.index.forget_cache(&evicted)?;
        }
        report.kept_bytes = plan.kept_bytes + kept_back;
        report.spared = plan.spared;
        report.over_budget = self.disk_budget.is_some_and(|b| report.kept_bytes > b);
        if !dry_run && report.count > 0 {
            tracing::info!(target: "ferry::gc", count = report.count, bytes = report.bytes, kept = report.kept_bytes, "collected garbage");
        }
        Ok(report)
    }

    /// Drops every cache hold, then collects: what only the cache held goes.
    pub(super) fn clear_cache(&mut self) -> Result<GcReport, GcError> {
        let ids: Vec<ContentId> = self.index.cache()?.into_keys().collect();
        self.index.forget_cache(&ids)?;
        self.collect(false)
    }

    /// With a disk budget: collects when the store has grown past it.
    pub(super) fn budget_tick(&mut self) {
        let Some(budget) = self.disk_budget else {
            return;
        };
        let now = Instant::now();
        if !self.gc_due && now < self.next_budget_check {
            return;
        }
        self.gc_due = false;
        self.next_budget_check = now + BUDGET_CHECK;
        let complete: u64 = self
            .blobs
            .list()
            .iter()
            .filter_map(|id| self.blobs.size(id))
            .sum();
        let partial: u64 = self
            .blobs
            .partials()
            .iter()
            .filter_map(|id| self.blobs.partial_size(id))
            .sum();
        let used = complete + partial;
        if used <= budget {
            return;
        }
        tracing::info!(target: "ferry::gc", used, budget, "blob store over its disk budget: collecting");
        match self.collect(false) {
            Ok(r) if r.over_budget && (r.spared > 0 || r.in_use > 0) => {
                // What is left will be evictable in a moment: look again soon.
                self.next_budget_check = now + OVER_BUDGET_RECHECK;
            }
            Ok(r) if r.over_budget => {
                tracing::warn!(target: "ferry::gc", kept = r.kept_bytes, budget, "still over the disk budget: everything left is pinned, published or being downloaded");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(target: "ferry::gc", "{e}"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests;

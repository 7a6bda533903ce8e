//! Which stored blobs a node keeps: holds, and the garbage-collection plan.
//!
//! Every blob a node stores is there for a reason, a *hold*: a pin covers its release,
//! this node's user fetched it (the cache, with the time of last use), it was published
//! here, or it is in flight (a download or a serve is using it right now). Garbage
//! collection frees every blob without a hold; under a disk budget it then evicts the
//! least recently used cache entries, and never a pinned, published or in-flight blob.
//! The plan is a pure function of the holds, the sizes and `now`, so the node only has
//! to gather the facts and apply the answer.

use std::collections::BTreeMap;

use serde::Serialize;

/// Why one blob is kept. A blob with none of these is garbage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Holds {
    /// A pin admits a release whose content or attachment this is.
    pub pinned: bool,
    /// A release made on this node (its content or an attachment).
    pub published: bool,
    /// This node's user fetched it: the time of the last use, in ms since the epoch.
    pub cache: Option<u64>,
    /// Being downloaded or served right now.
    pub in_flight: bool,
}

impl Holds {
    /// Whether anything holds the blob.
    pub fn any(&self) -> bool {
        self.pinned || self.published || self.cache.is_some() || self.in_flight
    }

    /// Whether only the cache holds it, so that a disk budget may evict it.
    pub fn evictable(&self) -> bool {
        self.cache.is_some() && !self.pinned && !self.published && !self.in_flight
    }
}

/// What the node knows about one stored blob (complete or partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Bytes it takes on disk.
    pub bytes: u64,
    /// Its holds.
    pub holds: Holds,
}

/// Why a blob is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Nothing held it.
    Unheld,
    /// Only the cache held it, and the store was over its disk budget.
    Evicted,
}

/// The outcome of planning a collection of blobs keyed by `K` (a content id, or a
/// content id with a flag for partial downloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    /// Blobs to free, with why, in the order they should go.
    pub free: Vec<(K, Reason)>,
    /// Bytes the freed blobs take.
    pub freed_bytes: u64,
    /// Bytes stored once the plan is applied.
    pub kept_bytes: u64,
    /// Whether the store is still over the budget after the plan (everything left is
    /// pinned, published, in flight or used within the grace period).
    pub over_budget: bool,
    /// Cache entries the budget would have evicted but for their grace period: once it
    /// ends, planning again frees more.
    pub spared: usize,
}

/// Plans a collection of `stored`.
///
/// Every blob without a hold is freed. Then, if `budget` is given and the remaining
/// bytes exceed it, blobs that only the cache holds are evicted, least recently used
/// first, until the store fits; entries used after `now_ms - grace_ms` are spared, so a
/// blob a user just fetched is not taken away before they read it.
pub fn plan<K: Ord + Copy>(
    stored: &BTreeMap<K, Stored>,
    budget: Option<u64>,
    now_ms: u64,
    grace_ms: u64,
) -> Plan<K> {
    let mut out = Plan {
        free: Vec::new(),
        freed_bytes: 0,
        kept_bytes: 0,
        over_budget: false,
        spared: 0,
    };
    let mut kept = 0u64;
    for (id, s) in stored {
        if s.holds.any() {
            kept = kept.saturating_add(s.bytes);
        } else {
            out.free.push((*id, Reason::Unheld));
            out.freed_bytes = out.freed_bytes.saturating_add(s.bytes);
        }
    }
    if let Some(budget) = budget
        && kept > budget
    {
        let recent = now_ms.saturating_sub(grace_ms);
        let mut lru: Vec<(u64, K, u64)> = Vec::new();
        for (id, s) in stored.iter().filter(|(_, s)| s.holds.evictable()) {
            match s.holds.cache {
                Some(used) if used < recent => lru.push((used, *id, s.bytes)),
                _ => out.spared += 1,
            }
        }
        // Oldest use first; ties broken by id so the plan is deterministic.
        lru.sort();
        for (_, id, bytes) in lru {
            if kept <= budget {
                break;
            }
            out.free.push((id, Reason::Evicted));
            out.freed_bytes = out.freed_bytes.saturating_add(bytes);
            kept -= bytes;
        }
    }
    out.kept_bytes = kept;
    out.over_budget = budget.is_some_and(|b| kept > b);
    if !out.over_budget {
        out.spared = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContentId;

    fn id(n: u8) -> ContentId {
        ContentId::of(&[n])
    }

    fn stored(entries: &[(u8, u64, Holds)]) -> BTreeMap<ContentId, Stored> {
        entries
            .iter()
            .map(|(n, bytes, holds)| {
                (
                    id(*n),
                    Stored {
                        bytes: *bytes,
                        holds: *holds,
                    },
                )
            })
            .collect()
    }

    const PINNED: Holds = Holds {
        pinned: true,
        published: false,
        cache: None,
        in_flight: false,
    };

    fn cache(at: u64) -> Holds {
        Holds {
            cache: Some(at),
            ..Holds::default()
        }
    }

    #[test]
    fn frees_exactly_the_unheld() {
        let in_flight = Holds {
            in_flight: true,
            ..Holds::default()
        };
        let published = Holds {
            published: true,
            ..Holds::default()
        };
        let s = stored(&[
            (1, 10, Holds::default()),
            (2, 20, PINNED),
            (3, 30, in_flight),
            (4, 40, published),
            (5, 50, cache(7)),
            (6, 60, Holds::default()),
        ]);
        let p = plan(&s, None, 1_000, 0);
        let mut freed: Vec<ContentId> = p.free.iter().map(|(i, _)| *i).collect();
        freed.sort();
        let mut want = vec![id(1), id(6)];
        want.sort();
        assert_eq!(freed, want);
        assert!(p.free.iter().all(|(_, r)| *r == Reason::Unheld));
        assert_eq!((p.freed_bytes, p.kept_bytes), (70, 140));
        assert!(!p.over_budget);
    }

    #[test]
    fn budget_evicts_least_recently_used_cache_only() {
        let pinned_and_cached = Holds {
            cache: Some(1),
            ..PINNED
        };
        let s = stored(&[
            (1, 100, pinned_and_cached),
            (2, 100, cache(300)),
            (3, 100, cache(100)),
            (4, 100, cache(200)),
            (5, 100, Holds::default()),
        ]);
        // 400 held bytes, budget 250: the two oldest cache entries go, in LRU order.
        let p = plan(&s, Some(250), 10_000, 0);
        assert_eq!(
            p.free,
            vec![
                (id(5), Reason::Unheld),
                (id(3), Reason::Evicted),
                (id(4), Reason::Evicted)
            ]
        );
        assert_eq!(
            (p.freed_bytes, p.kept_bytes, p.over_budget),
            (300, 200, false)
        );
    }

    #[test]
    fn budget_never_touches_pinned_or_recent() {
        let s = stored(&[(1, 100, PINNED), (2, 100, cache(950)), (3, 100, cache(10))]);
        // Entry 2 was used within the grace period: only 3 can go, and the store stays
        // over budget because the pinned blob alone exceeds it.
        let p = plan(&s, Some(50), 1_000, 100);
        assert_eq!(p.free, vec![(id(3), Reason::Evicted)]);
        assert!(p.over_budget);
        assert_eq!(p.spared, 1, "entry 2 can go once its grace ends");
        assert_eq!(p.kept_bytes, 200);
    }

    #[test]
    fn under_budget_keeps_the_cache() {
        let s = stored(&[(1, 10, cache(1)), (2, 10, cache(2))]);
        assert_eq!(plan(&s, Some(20), 1_000, 0).free, vec![]);
        assert_eq!(
            plan(&s, Some(19), 1_000, 0).free,
            vec![(id(1), Reason::Evicted)]
        );
    }
}

//! A connection gate shared by in-process nodes: it splits them into groups that cannot
//! reach each other (a network partition) and heals the split again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};

use futures::task::AtomicWaker;
use libp2p::PeerId;

/// Length below which the waker list is never pruned.
const MIN_PRUNE: usize = 64;

/// Which peers may be connected. Peers in different groups are cut off from each
/// other: new connections between them are refused after the handshake, and existing
/// ones fail at their next poll (the gate wakes them when it changes). Peers in no
/// group may talk to anyone.
#[derive(Debug, Default)]
pub struct Gate {
    groups: RwLock<HashMap<PeerId, u32>>,
    /// One waker per live connection, so a split reaches idle connections at once.
    connections: Mutex<Wakers>,
}

/// Wakers of connections, some of them dead. Dead ones are pruned when the list has
/// doubled since the last pruning, which keeps it within twice the live connections at
/// constant amortized cost (pruning on every registration made thousands of
/// connections quadratic).
#[derive(Debug, Default)]
struct Wakers {
    list: Vec<Weak<AtomicWaker>>,
    prune_at: usize,
}

impl Gate {
    /// A gate that allows everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts each peer in its group: from now on peers of different groups cannot talk.
    pub fn split(&self, groups: impl IntoIterator<Item = (PeerId, u32)>) {
        if let Ok(mut g) = self.groups.write() {
            g.clear();
            g.extend(groups);
        }
        self.wake_all();
    }

    /// Removes every group: all peers may connect again.
    pub fn heal(&self) {
        if let Ok(mut g) = self.groups.write() {
            g.clear();
        }
        self.wake_all();
    }

    /// Whether `a` and `b` may be connected.
    pub fn allows(&self, a: &PeerId, b: &PeerId) -> bool {
        let Ok(g) = self.groups.read() else {
            return true;
        };
        match (g.get(a), g.get(b)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    }

    /// Whether any split is in force.
    pub fn is_split(&self) -> bool {
        self.groups.read().map(|g| !g.is_empty()).unwrap_or(false)
    }

    pub(super) fn register(&self, waker: &Arc<AtomicWaker>) {
        if let Ok(mut c) = self.connections.lock() {
            if c.list.len() >= c.prune_at {
                c.list.retain(|w| w.strong_count() > 0);
                c.prune_at = (2 * c.list.len()).max(MIN_PRUNE);
            }
            c.list.push(Arc::downgrade(waker));
        }
    }

    fn wake_all(&self) {
        let wakers: Vec<Arc<AtomicWaker>> = match self.connections.lock() {
            Ok(c) => c.list.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => return,
        };
        for w in wakers {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cuts_between_groups_only() {
        let [a, b, c, outsider] = [(); 4].map(|_| PeerId::random());
        let gate = Gate::new();
        assert!(gate.allows(&a, &b));
        gate.split([(a, 0), (b, 0), (c, 1)]);
        assert!(gate.is_split());
        assert!(gate.allows(&a, &b));
        assert!(!gate.allows(&a, &c));
        assert!(!gate.allows(&c, &b));
        assert!(gate.allows(&outsider, &c));
        gate.heal();
        assert!(gate.allows(&a, &c));
        assert!(!gate.is_split());
    }

    #[test]
    fn dead_connections_are_pruned() {
        let gate = Gate::new();
        let live = Arc::new(AtomicWaker::new());
        for _ in 0..100 {
            let dead = Arc::new(AtomicWaker::new());
            gate.register(&dead);
        }
        gate.register(&live);
        let n = gate.connections.lock().map(|c| c.list.len()).unwrap_or(0);
        assert!(n <= MIN_PRUNE, "{n} wakers kept for one live connection");
        let live: Vec<_> = (0..1000).map(|_| Arc::new(AtomicWaker::new())).collect();
        for w in &live {
            gate.register(w);
        }
        let n = gate.connections.lock().map(|c| c.list.len()).unwrap_or(0);
        assert!(
            n <= 2 * live.len() + 1,
            "{n} wakers kept for 1001 live connections"
        );
    }
}

//! Traffic over a window of time: bytes sent and gossip counts of the nodes that were
//! up for the whole window (a restart resets a node's counters, so it is left out).

use std::sync::Arc;
use std::time::Instant;

use ferry_node::embedded::{GossipCounts, Traffic};

use super::Sim;

/// Counters of one node when the window opened.
struct Start {
    node: usize,
    traffic: Arc<Traffic>,
    sent: u64,
    gossip: GossipCounts,
}

/// An open window.
pub(super) struct Window {
    at: Instant,
    starts: Vec<Start>,
}

/// What happened during a window.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Totals {
    /// Nodes up for the whole window.
    pub nodes: usize,
    /// Seconds it lasted.
    pub seconds: f64,
    /// Bytes those nodes sent.
    pub sent: u64,
    /// Gossip messages they received, duplicates included.
    pub gossip: u64,
    /// Duplicate gossip copies they received.
    pub duplicates: u64,
    /// Gossip messages they rejected.
    pub rejected: u64,
}

impl Sim {
    /// Opens a window over the up nodes among `nodes`.
    pub(super) fn open_window(&self, nodes: &[usize]) -> Window {
        let starts = nodes
            .iter()
            .filter_map(|&n| {
                let node = self.nodes[n].node()?;
                Some(Start {
                    node: n,
                    traffic: node.traffic().clone(),
                    sent: node.traffic().sent(),
                    gossip: node.gossip(),
                })
            })
            .collect();
        Window {
            at: Instant::now(),
            starts,
        }
    }

    /// Closes `w`.
    pub(super) fn close_window(&self, w: &Window) -> Totals {
        let mut t = Totals {
            seconds: w.at.elapsed().as_secs_f64(),
            ..Totals::default()
        };
        for s in &w.starts {
            let Some(node) = self.nodes[s.node].node() else {
                continue;
            };
            if !Arc::ptr_eq(node.traffic(), &s.traffic) {
                continue;
            }
            let g = node.gossip();
            t.nodes += 1;
            t.sent += s.traffic.sent().saturating_sub(s.sent);
            t.gossip += g.received.saturating_sub(s.gossip.received);
            t.duplicates += g.duplicates().saturating_sub(s.gossip.duplicates());
            t.rejected += g.rejected.saturating_sub(s.gossip.rejected);
        }
        t
    }
}

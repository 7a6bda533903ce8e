//! The figures a run prints: as JSON (`--json`) or as a short text report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::observe::MaxDepths;
use crate::scenario::Config;

/// p50/p99/max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Spread {
    /// How many values.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Spread {
    /// The spread of `values`.
    pub fn of(values: &[Duration]) -> Self {
        let mut ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            let i = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[i]
        };
        Self {
            count: ms.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// One publish burst.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Burst {
    /// `clean`, `churn` or `partition`.
    pub name: String,
    /// Releases published.
    pub releases: usize,
    /// Publishes that failed, with why.
    pub publish_errors: Vec<String>,
    /// Honest nodes up during the whole burst.
    pub nodes: usize,
    /// Per release: time from publish until every target node (up, pinning the
    /// namespace, on the publisher's side) held the record and the blob.
    pub latency: Spread,
    /// The same for the record alone (indexed, blob not yet needed).
    pub index_latency: Spread,
    /// (node, release) pairs still not held when the phase timed out.
    pub undelivered: usize,
    /// Bytes sent per node per release over the burst window (everything on the wire:
    /// gossip, sync, blobs, DHT, keep-alives, adversaries' victims answering them).
    pub bytes_per_node_per_release: f64,
    /// The same, minus the idle rate measured before the first burst.
    pub bytes_per_node_per_release_net: f64,
    /// Gossip messages received per node per release, duplicates included.
    pub gossip_per_node_per_release: f64,
    /// Gossip copies of messages the node already had, per node per release.
    pub duplicates_per_node_per_release: f64,
    /// Seconds from the first publish until every target held every release.
    pub window_s: f64,
}

/// Churn: nodes stopped and restarted with their data, and nodes joining late.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Churn {
    /// Nodes stopped during the churn burst.
    pub stopped: usize,
    /// From restart until a restarted node held everything it pins.
    pub restart_catch_up: Spread,
    /// Nodes started after the churn burst.
    pub late_joiners: usize,
    /// From start until a late joiner held everything it pins.
    pub join_catch_up: Spread,
    /// Nodes that had not caught up when the phase timed out.
    pub behind: usize,
}

/// The partition and its healing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Partition {
    /// Honest nodes on each side.
    pub sides: [usize; 2],
    /// Milliseconds until no connection crossed the cut.
    pub cut_ms: f64,
    /// Whether every node converged after the heal.
    pub converged: bool,
    /// Milliseconds from the heal until every node held every release it pins and
    /// every log it follows had the same head everywhere.
    pub heal_convergence_ms: f64,
    /// Nodes not converged at the timeout.
    pub diverged: usize,
}

/// The misbehaving nodes and what came of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Misbehaviour {
    /// Adversaries.
    pub adversaries: usize,
    /// Forged records gossiped.
    pub gossiped: u64,
    /// Forged sync answers and garbage chunks served.
    pub served: u64,
    /// Forgeries by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Forged records found in any honest node's index (must be 0).
    pub accepted_anywhere: usize,
    /// Records signed by an adversary key in any honest log (must be 0).
    pub adversary_signed_records: usize,
    /// Gossip messages honest nodes rejected as invalid.
    pub rejected_by_honest: u64,
}

/// Invariants checked as the run went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Invariants {
    /// Stored blobs re-hashed.
    pub blobs_checked: usize,
    /// Stored blobs whose bytes did not hash to their CID (must be 0).
    pub bad_blobs: usize,
    /// Broken queue bounds and other violations (must be 0).
    pub violations: usize,
    /// The first few violations.
    pub violation_samples: Vec<String>,
    /// The deepest each queue got on any node.
    pub max_depths: MaxDepths,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The knobs.
    pub config: Option<Config>,
    /// Memory transport (in-process).
    pub transport: String,
    /// Seconds until every node knew the operator log and every namespace.
    pub setup_s: f64,
    /// Idle traffic before the first burst, bytes per node per second.
    pub idle_bytes_per_node_per_s: f64,
    /// The bursts.
    pub bursts: Vec<Burst>,
    /// Churn, if run.
    pub churn: Option<Churn>,
    /// The partition, if run.
    pub partition: Option<Partition>,
    /// The adversaries.
    pub misbehaviour: Misbehaviour,
    /// Invariants.
    pub invariants: Invariants,
    /// Whether, at the end, every honest node held every release it pins and agreed on
    /// the head of every log it follows.
    pub converged: bool,
    /// Honest nodes at the end.
    pub final_nodes: usize,
    /// Wall-clock seconds of the whole run.
    pub wall_s: f64,
}

impl Report {
    /// The report as text for a person.
    pub fn render(&self) -> String {
        let mut o = String::new();
        if let Some(c) = &self.config {
            let _ = writeln!(
                o,
                "ferry-sim: {} nodes (+{} late), {} adversaries, seed {}, {} namespaces, churn {}, partition {}",
                c.nodes, c.late_joiners, c.adversaries, c.seed, c.namespaces, c.churn, c.partition
            );
        }
        let _ = writeln!(
            o,
            "setup {:.1}s, idle traffic {:.0} B/node/s",
            self.setup_s, self.idle_bytes_per_node_per_s
        );
        let _ = writeln!(
            o,
            "{:<10} {:>4} {:>5} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10} {:>8} {:>8}",
            "burst",
            "rel",
            "nodes",
            "p50 ms",
            "p99 ms",
            "max ms",
            "undeliv",
            "B/node/rel",
            "net B",
            "gossip",
            "dups"
        );
        for b in &self.bursts {
            let _ = writeln!(
                o,
                "{:<10} {:>4} {:>5} {:>9.0} {:>9.0} {:>9.0} {:>7} {:>10.0} {:>10.0} {:>8.1} {:>8.2}",
                b.name,
                b.releases,
                b.nodes,
                b.latency.p50_ms,
                b.latency.p99_ms,
                b.latency.max_ms,
                b.undelivered,
                b.bytes_per_node_per_release,
                b.bytes_per_node_per_release_net,
                b.gossip_per_node_per_release,
                b.duplicates_per_node_per_release
            );
            let _ = writeln!(
                o,
                "{:<10} records indexed everywhere: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                "", b.index_latency.p50_ms, b.index_latency.p99_ms, b.index_latency.max_ms
            );
            for e in b.publish_errors.iter().take(3) {
                let _ = writeln!(o, "  publish error: {e}");
            }
        }
        if let Some(c) = &self.churn {
            let _ = writeln!(
                o,
                "churn: {} restarted, catch-up p50 {:.0} ms max {:.0} ms; {} late joiners, catch-up p50 {:.0} ms max {:.0} ms; {} behind",
                c.stopped,
                c.restart_catch_up.p50_ms,
                c.restart_catch_up.max_ms,
                c.late_joiners,
                c.join_catch_up.p50_ms,
                c.join_catch_up.max_ms,
                c.behind
            );
        }
        if let Some(p) = &self.partition {
            let _ = writeln!(
                o,
                "partition: sides {}+{}, cut in {:.0} ms; after heal {} in {:.0} ms ({} diverged)",
                p.sides[0],
                p.sides[1],
                p.cut_ms,
                if p.converged {
                    "converged"
                } else {
                    "NOT converged"
                },
                p.heal_convergence_ms,
                p.diverged
            );
        }
        let m = &self.misbehaviour;
        let _ = writeln!(
            o,
            "adversaries: {} gossiped {} forgeries, served {} bad answers; rejected by honest {}; accepted anywhere {}, adversary-signed records {}",
            m.adversaries,
            m.gossiped,
            m.served,
            m.rejected_by_honest,
            m.accepted_anywhere,
            m.adversary_signed_records
        );
        let i = &self.invariants;
        let _ = writeln!(
            o,
            "invariants: {} blobs re-hashed, {} bad; {} violations; max deferred {}, max sync in flight {}, max downloads {}, max peers {}, longest event-loop gap {} ms",
            i.blobs_checked,
            i.bad_blobs,
            i.violations,
            i.max_depths.deferred,
            i.max_depths.sync_in_flight,
            i.max_depths.downloads,
            i.max_depths.connected,
            i.max_depths.loop_gap_ms
        );
        for v in &i.violation_samples {
            let _ = writeln!(o, "  {v}");
        }
        let _ = writeln!(
            o,
            "final: {} ({} nodes), {:.1}s wall",
            if self.converged {
                "converged"
            } else {
                "NOT converged"
            },
            self.final_nodes,
            self.wall_s
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_uses_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Spread::of(&v);
        assert_eq!(
            (s.count, s.p50_ms, s.p99_ms, s.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        assert_eq!(Spread::of(&[]).count, 0);
        let one = Spread::of(&[Duration::from_millis(7)]);
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
    }
}

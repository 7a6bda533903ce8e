//! The scenario: what a run does, drawn from one seed before anything starts.
//!
//! Every choice (keys, who bootstraps from whom, who pins what, which releases go
//! where, who churns, how the partition cuts, whom the adversaries talk to) comes from
//! a `StdRng` seeded with [`Config::seed`], never from the clock, so one seed names one
//! script. What the network then does with it (gossip meshes, timings) varies from run
//! to run, which is what the measurements describe.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use semver::Version;
use serde::Serialize;

/// Namespace names the scenario draws from (each a valid label).
const NAMESPACE_NAMES: &[&str] = &[
    "acme", "wasi", "edge", "labs", "tools", "data", "media", "crypto", "infra", "games", "audio",
    "vision",
];
/// Package names inside each namespace.
const PACKAGE_NAMES: &[&str] = &["router", "codec", "store", "auth"];

/// Knobs of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Honest nodes at start (operator and publishers included).
    pub nodes: usize,
    /// Seed of every scripted choice.
    pub seed: u64,
    /// Namespaces defined at start.
    pub namespaces: usize,
    /// Packages per namespace.
    pub packages: usize,
    /// Nodes that own namespaces and publish (besides the operator).
    pub publishers: usize,
    /// Releases in each burst.
    pub releases: usize,
    /// Milliseconds between two publishes of a burst.
    pub publish_interval_ms: u64,
    /// Fraction of ordinary nodes stopped (data kept) during the churn burst and
    /// restarted after it. Zero skips the churn phase.
    pub churn: f64,
    /// Nodes that join after the churn burst.
    pub late_joiners: usize,
    /// Whether to cut the network in two, publish on both sides, and heal.
    pub partition: bool,
    /// Misbehaving nodes gossiping forged records and serving garbage.
    pub adversaries: usize,
    /// Earlier nodes each node bootstraps from.
    pub degree: usize,
    /// Honest nodes each adversary dials.
    pub adversary_links: usize,
    /// Milliseconds between two forgeries of one adversary.
    pub forge_interval_ms: u64,
    /// Probability that a node pins a given namespace.
    pub pin_probability: f64,
    /// Seconds a phase may take to converge before the run records a failure.
    pub phase_timeout_s: u64,
    /// Seconds of quiet before the first burst, to measure idle traffic.
    pub idle_s: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            nodes: 100,
            seed: 7,
            namespaces: 5,
            packages: 2,
            publishers: 4,
            releases: 20,
            publish_interval_ms: 50,
            churn: 0.1,
            late_joiners: 5,
            partition: true,
            adversaries: 3,
            degree: 3,
            adversary_links: 6,
            forge_interval_ms: 250,
            pin_probability: 0.5,
            phase_timeout_s: 120,
            idle_s: 5,
        }
    }
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Too few nodes for the roles.
    #[error(
        "--nodes {nodes} is too few: the operator, {publishers} publishers and at least 2 ordinary nodes need {need}"
    )]
    TooFewNodes {
        /// Nodes asked for.
        nodes: usize,
        /// Publishers asked for.
        publishers: usize,
        /// Nodes needed.
        need: usize,
    },
    /// Namespace or package count out of range.
    #[error("--namespaces must be 1..={max} (got {got}): one is added during the partition")]
    Namespaces {
        /// Asked for.
        got: usize,
        /// Most supported.
        max: usize,
    },
    /// Package count out of range.
    #[error("--packages must be 1..={max} (got {got})")]
    Packages {
        /// Asked for.
        got: usize,
        /// Most supported.
        max: usize,
    },
    /// A fraction outside 0..1.
    #[error("--{name} must be between 0 and 1 (got {value})")]
    Fraction {
        /// The option.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// No publishers.
    #[error("--publishers must be at least 1")]
    NoPublishers,
}

impl Config {
    /// Checks the knobs against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.publishers == 0 {
            return Err(ConfigError::NoPublishers);
        }
        let need = self.publishers + 3;
        if self.nodes < need {
            return Err(ConfigError::TooFewNodes {
                nodes: self.nodes,
                publishers: self.publishers,
                need,
            });
        }
        let max = NAMESPACE_NAMES.len() - 1;
        if self.namespaces == 0 || self.namespaces > max {
            return Err(ConfigError::Namespaces {
                got: self.namespaces,
                max,
            });
        }
        if self.packages == 0 || self.packages > PACKAGE_NAMES.len() {
            return Err(ConfigError::Packages {
                got: self.packages,
                max: PACKAGE_NAMES.len(),
            });
        }
        for (name, value) in [
            ("churn", self.churn),
            ("pin-probability", self.pin_probability),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Fraction { name, value });
            }
        }
        Ok(())
    }
}

/// What a node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Holds the operator key: created the network, defines namespaces.
    Operator,
    /// Owns namespaces and publishes into them.
    Publisher,
    /// Follows what it pins.
    Ordinary,
    /// Joins after the churn burst.
    LateJoiner,
}

/// One scripted node.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// Its role.
    pub role: Role,
    /// Seed of its libp2p identity.
    pub node_seed: [u8; 32],
    /// Seed of its publisher key.
    pub publisher_seed: [u8; 32],
    /// Indices of earlier nodes it bootstraps from.
    pub bootstrap: Vec<usize>,
    /// Indices of the namespaces it pins.
    pub pins: BTreeSet<usize>,
    /// Its side of the partition (0 or 1).
    pub side: u32,
}

/// One scripted release.
#[derive(Debug, Clone)]
pub struct Step {
    /// Namespace index.
    pub namespace: usize,
    /// Package name inside it.
    pub package: String,
    /// Version.
    pub version: Version,
    /// Tag that makes its component unique.
    pub tag: String,
}

impl Step {
    /// `namespace:package`.
    pub fn package_name(&self, plan: &Plan) -> String {
        format!("{}:{}", plan.namespaces[self.namespace], self.package)
    }
}

/// One scripted adversary.
#[derive(Debug, Clone)]
pub struct AdversaryPlan {
    /// Seed of its libp2p identity.
    pub node_seed: [u8; 32],
    /// Seed of the key it signs forgeries with.
    pub key_seed: [u8; 32],
    /// Honest nodes it dials.
    pub links: Vec<usize>,
    /// Its side of the partition.
    pub side: u32,
    /// Seed of its own choices while it runs.
    pub rng_seed: u64,
}

/// The whole script.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Namespace names; the last one is defined during the partition.
    pub namespaces: Vec<String>,
    /// Owner (node index) of each namespace.
    pub owners: Vec<usize>,
    /// Every node, late joiners last.
    pub nodes: Vec<NodePlan>,
    /// Seed of the genesis nonce.
    pub genesis_nonce: [u8; 16],
    /// Burst with every node up.
    pub clean: Vec<Step>,
    /// Burst while the churned nodes are down.
    pub churn: Vec<Step>,
    /// Ordinary nodes stopped during the churn burst.
    pub churned: Vec<usize>,
    /// Burst during the partition; each step is published on its owner's side.
    pub partitioned: Vec<Step>,
    /// The adversaries.
    pub adversaries: Vec<AdversaryPlan>,
}

impl Plan {
    /// Draws the script of `cfg` from its seed.
    pub fn draw(cfg: &Config) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let namespaces: Vec<String> = NAMESPACE_NAMES[..=cfg.namespaces]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let total = cfg.nodes + cfg.late_joiners;
        let mut nodes = Vec::with_capacity(total);
        for i in 0..total {
            let role = match i {
                0 => Role::Operator,
                i if i <= cfg.publishers => Role::Publisher,
                i if i < cfg.nodes => Role::Ordinary,
                _ => Role::LateJoiner,
            };
            let mut bootstrap = BTreeSet::new();
            // Late joiners bootstrap from anyone who started before them.
            let earlier = i.min(cfg.nodes);
            while i > 0 && bootstrap.len() < cfg.degree.min(earlier) {
                bootstrap.insert(rng.random_range(0..earlier));
            }
            let mut pins: BTreeSet<usize> = (0..namespaces.len())
                .filter(|_| rng.random_bool(cfg.pin_probability))
                .collect();
            if pins.is_empty() {
                pins.insert(rng.random_range(0..namespaces.len()));
            }
            // Publishers alternate sides so both halves publish; the rest fall where
            // the dice say.
            let side = match role {
                Role::Operator => 0,
                Role::Publisher => (i % 2) as u32,
                _ => rng.random_range(0..2),
            };
            nodes.push(NodePlan {
                role,
                node_seed: rng.random(),
                publisher_seed: rng.random(),
                bootstrap: bootstrap.into_iter().collect(),
                pins,
                side,
            });
        }
        // Namespaces go round-robin to the publishers; the partition's new namespace
        // belongs to the operator.
        let mut owners: Vec<usize> = (0..cfg.namespaces)
            .map(|n| 1 + n % cfg.publishers)
            .collect();
        owners.push(0);
        for (ns, owner) in owners.iter().enumerate() {
            // An owner keeps what it publishes.
            nodes[*owner].pins.insert(ns);
        }
        let mut versions = vec![vec![0u64; cfg.packages]; namespaces.len()];
        let mut tags = 0usize;
        let mut step = |rng: &mut StdRng, allowed: &[usize]| {
            let namespace = allowed[rng.random_range(0..allowed.len())];
            let p = rng.random_range(0..cfg.packages);
            versions[namespace][p] += 1;
            tags += 1;
            Step {
                namespace,
                package: PACKAGE_NAMES[p].to_string(),
                version: Version::new(1, versions[namespace][p], 0),
                tag: format!("r{tags}"),
            }
        };
        let initial: Vec<usize> = (0..cfg.namespaces).collect();
        let clean = (0..cfg.releases)
            .map(|_| step(&mut rng, &initial))
            .collect();
        let churn_steps = if cfg.churn > 0.0 {
            (0..cfg.releases)
                .map(|_| step(&mut rng, &initial))
                .collect()
        } else {
            Vec::new()
        };
        let ordinary: Vec<usize> = (0..cfg.nodes)
            .filter(|i| nodes[*i].role == Role::Ordinary)
            .collect();
        let stop_count = ((ordinary.len() as f64) * cfg.churn).round() as usize;
        let mut churned = BTreeSet::new();
        while churned.len() < stop_count.min(ordinary.len()) {
            churned.insert(ordinary[rng.random_range(0..ordinary.len())]);
        }
        // Steps alternate between the sides, so both halves publish while cut off.
        let by_side: Vec<Vec<usize>> = (0..2)
            .map(|side| {
                (0..namespaces.len())
                    .filter(|ns| nodes[owners[*ns]].side == side)
                    .collect()
            })
            .collect();
        let partitioned = if cfg.partition {
            (0..cfg.releases)
                .map(|k| {
                    let side = &by_side[k % 2];
                    let allowed = if side.is_empty() { &by_side[0] } else { side };
                    step(&mut rng, allowed)
                })
                .collect()
        } else {
            Vec::new()
        };
        let adversaries = (0..cfg.adversaries)
            .map(|_| {
                let mut links = BTreeSet::new();
                while links.len() < cfg.adversary_links.min(cfg.nodes) {
                    links.insert(rng.random_range(0..cfg.nodes));
                }
                AdversaryPlan {
                    node_seed: rng.random(),
                    key_seed: rng.random(),
                    links: links.into_iter().collect(),
                    side: rng.random_range(0..2),
                    rng_seed: rng.random(),
                }
            })
            .collect();
        Plan {
            namespaces,
            owners,
            nodes,
            genesis_nonce: rng.random(),
            clean,
            churn: churn_steps,
            churned: churned.into_iter().collect(),
            partitioned,
            adversaries,
        }
    }

    /// Index of the namespace defined during the partition.
    pub fn late_namespace(&self) -> usize {
        self.namespaces.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_script() {
        let cfg = Config::default();
        let (a, b) = (Plan::draw(&cfg), Plan::draw(&cfg));
        assert_eq!(a.nodes[17].node_seed, b.nodes[17].node_seed);
        assert_eq!(a.nodes[42].bootstrap, b.nodes[42].bootstrap);
        assert_eq!(a.churned, b.churned);
        let other = Plan::draw(&Config {
            seed: 8,
            ..Config::default()
        });
        assert_ne!(a.nodes[17].node_seed, other.nodes[17].node_seed);
    }

    #[test]
    fn script_is_well_formed() {
        let cfg = Config::default();
        let plan = Plan::draw(&cfg);
        assert_eq!(plan.nodes.len(), cfg.nodes + cfg.late_joiners);
        for (i, n) in plan.nodes.iter().enumerate() {
            assert!(
                n.bootstrap.iter().all(|b| *b < i.min(cfg.nodes)),
                "node {i}"
            );
            assert!(i == 0 || !n.bootstrap.is_empty(), "node {i} has no peer");
            assert!(!n.pins.is_empty());
        }
        for (ns, owner) in plan.owners.iter().enumerate() {
            assert!(plan.nodes[*owner].pins.contains(&ns));
        }
        assert!(
            plan.churned
                .iter()
                .all(|i| plan.nodes[*i].role == Role::Ordinary)
        );
        assert_eq!(plan.churned.len(), 10);
        // Both sides publish during the partition.
        let sides: BTreeSet<u32> = plan
            .partitioned
            .iter()
            .map(|s| plan.nodes[plan.owners[s.namespace]].side)
            .collect();
        assert_eq!(sides.len(), 2);
        // Versions of one package only grow.
        let mut seen = std::collections::HashMap::new();
        for s in plan
            .clean
            .iter()
            .chain(&plan.churn)
            .chain(&plan.partitioned)
        {
            let last = seen.insert(s.package_name(&plan), s.version.clone());
            assert!(last.is_none_or(|v| v < s.version));
        }
    }
}

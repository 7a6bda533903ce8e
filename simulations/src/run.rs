//! The scripted run: set up the network, then a clean burst, a burst under churn with
//! restarts and late joiners, a burst across a partition and its healing, with the
//! adversaries forging throughout; measure each phase and check invariants after it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_node::embedded::Gate;
use ferry_node::libp2p::PeerId;
use ferry_protocol::{
    ContentId, Keypair, Namespace, PackageName, PublicKey, RecordId, SignedRecord,
};

use crate::adversary::{Adversary, Forgeries, Knowledge};
use crate::cluster::{self, ClusterError, SimNode};
use crate::components::{BuildError, Built};
use crate::observe::Observations;
use crate::report::{Burst, Churn, Misbehaviour, Partition, Report, Spread};
use crate::scenario::{Config, ConfigError, Plan, Step};

mod check;
mod window;

/// How often cheap conditions (the probes' records) are re-checked while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How often conditions that read every node's index are re-checked: they run on the
/// runtime's threads, beside the nodes they measure.
const SLOW_POLL: Duration = Duration::from_millis(1000);

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Bad knobs.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A component could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A node could not be prepared or started.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The working directory could not be made.
    #[error("creating the working directory under {path}: {source}")]
    WorkDir {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The network never formed, so nothing could be measured.
    #[error("setup: {0}")]
    Setup(String),
    /// An adversary could not start.
    #[error("adversary {index}: {why}")]
    Adversary {
        /// Which.
        index: usize,
        /// Why.
        why: String,
    },
}

/// A release the run published.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    record: RecordId,
    content: ContentId,
    namespace: usize,
    at: Instant,
}

/// The state of a run.
pub(crate) struct Sim {
    cfg: Config,
    plan: Plan,
    gate: Arc<Gate>,
    obs: Arc<Observations>,
    nodes: Vec<SimNode>,
    built: HashMap<String, Built>,
    published: Vec<Published>,
    forgeries: Arc<Forgeries>,
    adversaries: Vec<Adversary>,
    timeout: Duration,
    report: Report,
}

/// Polls `cond` every `every` until it holds or `timeout` passes; whether it held.
async fn until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs the scenario of `cfg` with node data under `dir` (a fresh temporary directory,
/// on tmpfs when `/dev/shm` exists, if `None`).
pub async fn run(cfg: Config, dir: Option<PathBuf>) -> Result<Report, SimError> {
    cfg.validate()?;
    let started = Instant::now();
    let base = dir.unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let work = tempfile::Builder::new()
        .prefix("ferry-sim-")
        .tempdir_in(&base)
        .map_err(|source| SimError::WorkDir { path: base, source })?;
    let plan = Plan::draw(&cfg);
    let mut built = HashMap::new();
    for s in plan
        .clean
        .iter()
        .chain(&plan.churn)
        .chain(&plan.partitioned)
    {
        built.insert(s.tag.clone(), Built::new(&s.tag)?);
    }
    let genesis = cluster::genesis(&plan);
    let nodes = (0..plan.nodes.len())
        .map(|i| cluster::sim_node(work.path(), &plan, i, &genesis))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sim = Sim {
        timeout: Duration::from_secs(cfg.phase_timeout_s),
        report: Report {
            config: Some(cfg.clone()),
            transport: "libp2p memory transport, noise, yamux".into(),
            ..Report::default()
        },
        cfg,
        plan,
        gate: Arc::new(Gate::new()),
        obs: Arc::new(Observations::default()),
        nodes,
        built,
        published: Vec::new(),
        forgeries: Arc::new(Forgeries::default()),
        adversaries: Vec::new(),
    };
    let outcome = sim.script(&genesis).await;
    sim.teardown().await;
    outcome?;
    sim.report.wall_s = started.elapsed().as_secs_f64();
    drop(work);
    Ok(sim.report)
}

impl Sim {
    async fn script(&mut self, genesis: &SignedRecord) -> Result<(), SimError> {
        let t = Instant::now();
        let phase = |name: &str| tracing::info!(target: "ferry::sim", elapsed_s = t.elapsed().as_secs_f64(), "{name}");
        self.setup(genesis).await?;
        phase("set up");
        self.idle().await;
        let clean = self.plan.clean.clone();
        let everyone = self.up();
        self.burst("clean", &clean, &[everyone], None).await;
        self.check_invariants();
        phase("clean burst done");
        if !self.plan.churn.is_empty() {
            self.churn().await?;
            self.check_invariants();
            phase("churn done");
        }
        if self.cfg.partition {
            self.partition().await;
            self.check_invariants();
            phase("partition healed");
        }
        self.finish().await;
        phase("finished");
        Ok(())
    }

    fn start_node(&mut self, i: usize) -> Result<(), SimError> {
        let boot = self.plan.nodes[i]
            .bootstrap
            .iter()
            .map(|b| self.nodes[*b].addr())
            .collect();
        self.nodes[i].start(boot, &self.gate, &self.obs)?;
        Ok(())
    }

    fn publisher_key(&self, node: usize) -> PublicKey {
        Keypair::from_seed(self.plan.nodes[node].publisher_seed).public()
    }

    fn namespace(&self, i: usize) -> Namespace {
        // The names come from a fixed list of valid labels.
        self.plan.namespaces[i]
            .parse()
            .unwrap_or_else(|_| unreachable!("namespace names are valid labels"))
    }

    async fn define(&mut self, ns: usize) -> Result<(), String> {
        let owner = self.publisher_key(self.plan.owners[ns]);
        let name = self.namespace(ns);
        let op = self.nodes[0].node().ok_or("the operator is down")?;
        op.handle()
            .define_namespace(name.clone(), vec![owner])
            .await
            .map_err(|e| format!("defining {name}: {e}"))
    }

    fn knows_namespaces(&self, n: usize, count: usize) -> bool {
        let Some(node) = self.nodes[n].node() else {
            return true;
        };
        node.index()
            .operator_state()
            .ok()
            .flatten()
            .is_some_and(|op| (0..count).all(|i| op.namespaces.contains_key(&self.namespace(i))))
    }

    async fn setup(&mut self, genesis: &SignedRecord) -> Result<(), SimError> {
        let t = Instant::now();
        for i in 0..self.cfg.nodes {
            self.start_node(i)?;
        }
        for ns in 0..self.cfg.namespaces {
            self.define(ns).await.map_err(SimError::Setup)?;
        }
        let n = self.cfg.namespaces;
        let all = self.up();
        let ok = until(self.timeout, SLOW_POLL, || {
            all.iter().all(|i| self.knows_namespaces(*i, n))
        })
        .await;
        if !ok {
            let behind = all
                .iter()
                .filter(|i| !self.knows_namespaces(**i, n))
                .count();
            return Err(SimError::Setup(format!(
                "{behind} of {} nodes never learned the {n} namespaces",
                all.len()
            )));
        }
        self.report.setup_s = t.elapsed().as_secs_f64();
        let know = Knowledge {
            network: genesis.id,
            namespaces: (0..self.plan.namespaces.len())
                .map(|i| (self.namespace(i), self.publisher_key(self.plan.owners[i])))
                .collect(),
            targets: Vec::new(),
        };
        for (index, a) in self.plan.adversaries.clone().iter().enumerate() {
            let mut k = know.clone();
            k.targets = a.links.iter().map(|l| self.nodes[*l].addr()).collect();
            let adv = Adversary::spawn(
                a,
                cluster::port(),
                k,
                self.gate.clone(),
                self.forgeries.clone(),
                Duration::from_millis(self.cfg.forge_interval_ms),
            )
            .map_err(|why| SimError::Adversary { index, why })?;
            tracing::info!(target: "ferry::sim", peer = %adv.peer, "adversary {index}");
            self.adversaries.push(adv);
        }
        Ok(())
    }

    async fn idle(&mut self) {
        let w = self.open_window(&self.up());
        tokio::time::sleep(Duration::from_secs(self.cfg.idle_s)).await;
        let t = self.close_window(&w);
        if t.nodes > 0 && t.seconds > 0.0 {
            self.report.idle_bytes_per_node_per_s = t.sent as f64 / t.nodes as f64 / t.seconds;
        }
    }

    async fn publish(&mut self, step: &Step) -> Result<(), String> {
        let owner = self.plan.owners[step.namespace];
        let built = self
            .built
            .get(&step.tag)
            .ok_or_else(|| format!("no component for {}", step.tag))?;
        let package: PackageName = step
            .package_name(&self.plan)
            .parse()
            .map_err(|e| format!("{e}"))?;
        let node = self.nodes[owner]
            .node()
            .ok_or_else(|| format!("the owner of {package} is down"))?;
        node.blobs()
            .put(&built.bytes)
            .map_err(|e| format!("storing {package}@{}: {e}", step.version))?;
        self.obs.stored(owner, built.content);
        let draft = built.draft(package.clone(), step.version.clone());
        let at = Instant::now();
        let entry = node
            .handle()
            .publish(draft)
            .await
            .map_err(|e| format!("publishing {package}@{}: {e}", step.version))?;
        self.published.push(Published {
            record: entry.record,
            content: entry.content,
            namespace: step.namespace,
            at,
        });
        Ok(())
    }

    /// Publishes `steps`, then waits until every node of each group in `groups` that
    /// pins a release's namespace holds it; a release published on side `s` of a
    /// partition (`sides`) only counts nodes of the group on that side.
    async fn burst(
        &mut self,
        name: &str,
        steps: &[Step],
        groups: &[Vec<usize>],
        sides: Option<&HashMap<usize, u32>>,
    ) {
        let members: Vec<usize> = groups.iter().flatten().copied().collect();
        let w = self.open_window(&members);
        let first = self.published.len();
        let mut errors = Vec::new();
        for s in steps {
            if let Err(e) = self.publish(s).await {
                errors.push(e);
            }
            tokio::time::sleep(Duration::from_millis(self.cfg.publish_interval_ms)).await;
        }
        let releases: Vec<Published> = self.published[first..].to_vec();
        let targets = |p: &Published| -> Vec<usize> {
            let side = sides.map(|s| s.get(&self.plan.owners[p.namespace]).copied());
            members
                .iter()
                .copied()
                .filter(|n| self.pins(*n, p))
                .filter(|n| match (side, sides) {
                    (Some(Some(ps)), Some(s)) => s.get(n) == Some(&ps),
                    _ => true,
                })
                .collect()
        };
        let all_held = |s: &Sim| {
            releases
                .iter()
                .all(|p| targets(p).iter().all(|n| s.held(*n, p).is_some()))
        };
        until(self.timeout, POLL, || all_held(self)).await;
        let totals = self.close_window(&w);
        let mut latencies = Vec::new();
        let mut index_latencies = Vec::new();
        let mut undelivered = 0;
        for p in &releases {
            let (mut last, mut last_indexed) = (p.at, p.at);
            for n in targets(p) {
                match self.held(n, p) {
                    Some(t) => last = last.max(t),
                    None => undelivered += 1,
                }
                if let Some(t) = self.obs.indexed_at(n, p.record) {
                    last_indexed = last_indexed.max(t);
                }
            }
            latencies.push(last.duration_since(p.at));
            index_latencies.push(last_indexed.duration_since(p.at));
        }
        let per = (totals.nodes.max(1) * releases.len().max(1)) as f64;
        let idle = self.report.idle_bytes_per_node_per_s * totals.seconds * totals.nodes as f64;
        let burst = Burst {
            name: name.to_string(),
            releases: releases.len(),
            publish_errors: errors,
            nodes: totals.nodes,
            latency: Spread::of(&latencies),
            index_latency: Spread::of(&index_latencies),
            undelivered,
            bytes_per_node_per_release: totals.sent as f64 / per,
            bytes_per_node_per_release_net: (totals.sent as f64 - idle).max(0.0) / per,
            gossip_per_node_per_release: totals.gossip as f64 / per,
            duplicates_per_node_per_release: totals.duplicates as f64 / per,
            window_s: totals.seconds,
        };
        self.report.bursts.push(burst);
    }

    /// The latest time `n` came to hold something it pins, measured from `since`; `None`
    /// while it still lacks something.
    fn caught_up(&self, n: usize, since: Instant) -> Option<Duration> {
        let mut last = since;
        for p in self.expected(n) {
            last = last.max(self.held(n, p)?);
        }
        Some(last.duration_since(since))
    }

    async fn churn(&mut self) -> Result<(), SimError> {
        let churned = self.plan.churned.clone();
        for &n in &churned {
            self.nodes[n].stop().await;
        }
        let steps = self.plan.churn.clone();
        let up = self.up();
        self.burst("churn", &steps, &[up], None).await;
        let mut restarted = Vec::new();
        for &n in &churned {
            self.start_node(n)?;
            restarted.push((n, Instant::now()));
        }
        let mut joined = Vec::new();
        for n in self.cfg.nodes..self.plan.nodes.len() {
            self.start_node(n)?;
            joined.push((n, Instant::now()));
        }
        let everyone: Vec<(usize, Instant)> = restarted.iter().chain(&joined).copied().collect();
        until(self.timeout, POLL, || {
            everyone
                .iter()
                .all(|(n, t)| self.caught_up(*n, *t).is_some())
        })
        .await;
        let spread = |list: &[(usize, Instant)]| {
            let times: Vec<Duration> = list
                .iter()
                .filter_map(|(n, t)| self.caught_up(*n, *t))
                .collect();
            Spread::of(&times)
        };
        let churn = Churn {
            stopped: restarted.len(),
            restart_catch_up: spread(&restarted),
            late_joiners: joined.len(),
            join_catch_up: spread(&joined),
            behind: everyone
                .iter()
                .filter(|(n, t)| self.caught_up(*n, *t).is_none())
                .count(),
        };
        self.report.churn = Some(churn);
        Ok(())
    }

    /// Peers of up node `n` that sit on the other side of the cut.
    async fn crossing(&self, n: usize, side_of: &HashMap<String, u32>) -> usize {
        let Some(node) = self.nodes[n].node() else {
            return 0;
        };
        let mine = side_of.get(&node.peer_id().to_string());
        node.handle()
            .peers()
            .await
            .iter()
            .filter(|p| side_of.get(&p.peer_id).is_some_and(|s| Some(s) != mine))
            .count()
    }

    async fn partition(&mut self) {
        let up = self.up();
        let side: HashMap<usize, u32> = up.iter().map(|n| (*n, self.plan.nodes[*n].side)).collect();
        let mut groups: Vec<(PeerId, u32)> =
            up.iter().map(|n| (self.nodes[*n].peer, side[n])).collect();
        for (a, p) in self.adversaries.iter().zip(&self.plan.adversaries) {
            groups.push((a.peer, p.side));
        }
        let side_of: HashMap<String, u32> =
            groups.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        let t = Instant::now();
        self.gate.split(groups);
        let end = Instant::now() + self.timeout;
        loop {
            let counts =
                futures::future::join_all(up.iter().map(|n| self.crossing(*n, &side_of))).await;
            if counts.iter().sum::<usize>() == 0 || Instant::now() >= end {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let mut report = Partition {
            cut_ms: t.elapsed().as_secs_f64() * 1000.0,
            ..Partition::default()
        };
        for s in side.values() {
            report.sides[*s as usize] += 1;
        }
        // The operator, on side 0, defines a namespace only its side learns of.
        let late = self.plan.late_namespace();
        let mut define_error = None;
        if let Err(e) = self.define(late).await {
            define_error = Some(e);
        }
        let groups: Vec<Vec<usize>> = (0..2)
            .map(|s| up.iter().copied().filter(|n| side[n] == s).collect())
            .collect();
        let steps = self.plan.partitioned.clone();
        self.burst("partition", &steps, &groups, Some(&side)).await;
        if let (Some(e), Some(b)) = (define_error, self.report.bursts.last_mut()) {
            b.publish_errors.insert(0, e);
        }
        let healed = Instant::now();
        self.gate.heal();
        let converged = until(self.timeout, SLOW_POLL, || self.diverged(&up).is_empty()).await;
        report.converged = converged;
        report.heal_convergence_ms = healed.elapsed().as_secs_f64() * 1000.0;
        report.diverged = self.diverged(&up).len();
        self.report.partition = Some(report);
    }

    fn check_invariants(&mut self) {
        let (checked, bad) = self.check_blobs();
        let inv = &mut self.report.invariants;
        inv.blobs_checked += checked;
        inv.bad_blobs += bad.len();
        inv.violation_samples.extend(bad.into_iter().take(8));
    }

    async fn finish(&mut self) {
        let up = self.up();
        let converged = until(self.timeout, SLOW_POLL, || self.diverged(&up).is_empty()).await;
        let on_disk = self.missing_on_disk(&up);
        self.report.converged = converged && on_disk == 0;
        self.report.final_nodes = up.len();
        let (known, signed) = self.accepted_forgeries();
        let rejected = up
            .iter()
            .filter_map(|n| self.nodes[*n].node())
            .map(|n| n.gossip().rejected)
            .sum();
        self.report.misbehaviour = Misbehaviour {
            adversaries: self.adversaries.len(),
            gossiped: self.forgeries.gossiped(),
            served: self.forgeries.served(),
            by_kind: self
                .forgeries
                .by_kind()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            accepted_anywhere: known,
            adversary_signed_records: signed,
            rejected_by_honest: rejected,
        };
        let (count, samples) = self.obs.violations();
        let inv = &mut self.report.invariants;
        inv.violations = count;
        inv.violation_samples.extend(samples);
        inv.max_depths = self.obs.max_depths();
    }

    async fn teardown(&mut self) {
        for a in self.adversaries.drain(..) {
            a.stop().await;
        }
        for n in &mut self.nodes {
            n.stop().await;
        }
    }
}

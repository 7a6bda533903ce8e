//! `ferry-sim`: runs a simulation and prints its figures.
//!
//! ```text
//! cargo run --release -p ferry-simulations -- --nodes 200 --seed 7 --churn 0.1 --partition
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferry_simulations::scenario::Config;

/// Many Ferry nodes in one process: publish bursts, churn, a partition, adversaries.
#[derive(Debug, Parser)]
#[command(name = "ferry-sim", version)]
struct Args {
    /// Honest nodes at start.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Seed of every scripted choice: one seed, one script.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Fraction of ordinary nodes stopped during the churn burst (0 skips churn).
    #[arg(long, default_value_t = 0.1)]
    churn: f64,
    /// Nodes that join after the churn burst.
    #[arg(long, default_value_t = 5)]
    late_joiners: usize,
    /// Cut the network in two, publish on both sides, heal.
    #[arg(long)]
    partition: bool,
    /// Misbehaving nodes.
    #[arg(long, default_value_t = 3)]
    adversaries: usize,
    /// Releases per burst.
    #[arg(long, default_value_t = 30)]
    releases: usize,
    /// Namespaces defined at start.
    #[arg(long, default_value_t = 5)]
    namespaces: usize,
    /// Packages per namespace.
    #[arg(long, default_value_t = 2)]
    packages: usize,
    /// Publishing nodes besides the operator.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Earlier nodes each node bootstraps from.
    #[arg(long, default_value_t = 3)]
    degree: usize,
    /// Milliseconds between two publishes.
    #[arg(long, default_value_t = 50)]
    publish_interval_ms: u64,
    /// Probability that a node pins a given namespace.
    #[arg(long, default_value_t = 0.5)]
    pin_probability: f64,
    /// Seconds a phase may take before the run records it as not converged.
    #[arg(long, default_value_t = 180)]
    phase_timeout: u64,
    /// Seconds of idle traffic measured before the first burst.
    #[arg(long, default_value_t = 5)]
    idle: u64,
    /// Where node data goes (default: a temporary directory on /dev/shm if present).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = Config {
        nodes: args.nodes,
        seed: args.seed,
        churn: args.churn,
        late_joiners: args.late_joiners,
        partition: args.partition,
        adversaries: args.adversaries,
        releases: args.releases,
        namespaces: args.namespaces,
        packages: args.packages,
        publishers: args.publishers,
        degree: args.degree,
        publish_interval_ms: args.publish_interval_ms,
        pin_probability: args.pin_probability,
        phase_timeout_s: args.phase_timeout,
        idle_s: args.idle,
        ..Config::default()
    };
    if let Err(e) = cfg.validate() {
        eprintln!("ferry-sim: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry-sim: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ferry_simulations::run(cfg, args.dir)) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("ferry-sim: encoding the report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.render());
            }
            let clean = report.converged
                && report.misbehaviour.accepted_anywhere == 0
                && report.misbehaviour.adversary_signed_records == 0
                && report.invariants.bad_blobs == 0
                && report.invariants.violations == 0;
            if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ferry-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

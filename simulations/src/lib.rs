//! # ferry-simulations
//!
//! Tens to hundreds of real Ferry nodes in one process: the node's own event loop,
//! gossipsub, Kademlia, sync and blob protocols, redb index files and blob stores, each
//! node an [`ferry_node::embedded::EmbeddedNode`] on libp2p's memory transport (noise +
//! yamux), so no ports or OS limits are involved and only in-process addresses exist.
//!
//! A run follows a script drawn from one seed ([`scenario`]): a network with its
//! operator and namespaces, nodes bootstrapping from a few earlier ones and pinning a
//! subset of namespaces, publish bursts of small real components, churn (nodes stopped
//! and restarted with their data, late joiners), one partition that is healed, and a
//! few adversaries gossiping forged records. It reports ([`report::Report`]) per-release
//! propagation time to every pinning node (p50/p99/max), bytes sent per node per
//! release, duplicate gossip deliveries, forgeries accepted anywhere (must be 0), and
//! whether and how fast all nodes converged after the partition healed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry_simulations::SimError> {
//! let cfg = ferry_simulations::scenario::Config { nodes: 50, ..Default::default() };
//! let report = ferry_simulations::run(cfg, None).await?;
//! println!("{}", report.render());
//! # Ok(()) }
//! ```

pub mod adversary;
pub mod cluster;
pub mod components;
pub mod observe;
pub mod report;
mod run;
pub mod scenario;

pub use run::{SimError, run};

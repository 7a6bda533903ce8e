//! # ferry-node
//!
//! The I/O shell around [`ferry_protocol`]: one tokio event loop owns the libp2p Swarm
//! (gossipsub announcements, Kademlia provider records, request-response sync and blob
//! transfer), a redb index, a blob store, and a local HTTP API for the CLI.

pub mod api;
pub mod blob_store;
pub mod command;
pub mod data_dir;
pub mod embedded;
pub mod event_loop;
pub mod index;
pub mod mirror;
pub mod node;
pub mod snapshot;
pub mod swarm;
pub mod transfer;

/// The libp2p version this node speaks, for tests and simulations that drive a swarm.
pub use libp2p;
pub use libp2p::Multiaddr;
pub use node::{NodeConfig, NodeError, init_join, init_new_network, run};

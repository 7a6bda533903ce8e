//! Live mirrors: this node follows a filtered subset of *another* network and serves
//! it, to its own users (the local API answers from mirrors too) and to that network's
//! peers (the mirror is a full node of the origin network for the subset it holds).
//!
//! A network is named by its genesis record, and every topic and DHT key carries that
//! id, so a mirror is simply a second network instance in the same process:
//!
//! ```text
//! DIR/mirrors.json              the mirrors: origin network, bootstrap peers, filter
//! DIR/mirrors/<net>/index.redb  the mirror's own index, validated against the origin's
//!                               genesis and operator log exactly as the origin's own
//!                               nodes validate it: records stay verifiable with the
//!                               origin's keys, and this node signs nothing there
//! DIR/mirrors/<net>/node.key    the mirror's own libp2p identity (one peer per network,
//!                               so the DHTs of two networks never mix)
//! DIR/mirrors/<net>/node.json   while running: the mirror's peer id and addresses, for
//!                               other nodes of the origin network to bootstrap from
//! DIR/blobs/                    shared with the node's own network: blobs are named by
//!                               content, so one copy serves both
//! ```
//!
//! The filter becomes the pins of the mirror's index: the mirror instance subscribes
//! only to the namespaces the filter covers, syncs and indexes only the operator log,
//! attester logs and the covered package logs, and fetches and provides the blobs of
//! the releases the filter admits, with the same machinery as pins on any node.

use std::path::PathBuf;

use ferry_protocol::NetworkId;
use ferry_protocol::filter::Filter;
use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

use crate::data_dir::{DataDir, DataDirError};
use crate::swarm;

mod follow;
mod registry;
pub use registry::{Instance, MirrorStatus, Mirrors, MirrorsContext};

/// The file listing the mirrors.
pub const MIRRORS_FILE: &str = "mirrors.json";
/// The directory holding each mirror's index and keys.
pub const MIRRORS_DIR: &str = "mirrors";
/// Most mirrors one node keeps: each is a swarm with its own connections.
pub const MAX_MIRRORS: usize = 16;
/// Most bootstrap peers per mirror.
pub const MAX_BOOTSTRAP: usize = 32;

/// One mirror, as `mirrors.json` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorConfig {
    /// The origin network.
    pub network: NetworkId,
    /// Its peers to dial at start, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// What to follow.
    pub filter: Filter,
    /// When the mirror was added, in milliseconds since the Unix epoch.
    pub added_ms: u64,
}

/// Why a mirror operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Data directory problem.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// `mirrors.json` does not parse.
    #[error("{path} is corrupt: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A node does not mirror its own network.
    #[error(
        "this node already follows network {0}; a mirror is of another network (pin packages instead: `ferry pin add PATTERN`)"
    )]
    OwnNetwork(NetworkId),
    /// No mirror of that network.
    #[error("no mirror of network {0} here (see `ferry mirror ls`)")]
    NotFound(NetworkId),
    /// The filter includes nothing.
    #[error("a mirror needs at least one --filter pattern, e.g. --filter 'wasi:*'")]
    EmptyFilter,
    /// The filter cannot become pins (e.g. a license that is not SPDX).
    #[error("{0}")]
    BadFilter(String),
    /// A bootstrap address is unusable.
    #[error("bootstrap address `{0}` is not a multiaddr ending in /p2p/<peer id>")]
    BadBootstrap(String),
    /// Too many mirrors or bootstrap peers.
    #[error("{0}")]
    OverLimit(String),
    /// Reading a mirror's index failed.
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    /// Starting the mirror instance failed.
    #[error("starting the mirror of network {network}: {why}")]
    Start {
        /// The origin network.
        network: NetworkId,
        /// Why.
        why: String,
    },
}

impl MirrorConfig {
    /// Checks the filter and bootstrap addresses.
    pub fn check(&self) -> Result<(), MirrorError> {
        if self.filter.include.is_empty() {
            return Err(MirrorError::EmptyFilter);
        }
        follow::pins_of(&self.filter)?;
        if self.bootstrap.len() > MAX_BOOTSTRAP {
            return Err(MirrorError::OverLimit(format!(
                "{} bootstrap peers given; a mirror takes at most {MAX_BOOTSTRAP}",
                self.bootstrap.len()
            )));
        }
        for b in &self.bootstrap {
            self.bootstrap_addr(b)?;
        }
        Ok(())
    }

    fn bootstrap_addr(&self, b: &str) -> Result<Multiaddr, MirrorError> {
        b.parse::<Multiaddr>()
            .ok()
            .filter(|a| swarm::peer_of(a).is_some())
            .ok_or_else(|| MirrorError::BadBootstrap(b.to_string()))
    }

    /// The bootstrap addresses, parsed.
    pub fn bootstrap_addrs(&self) -> Result<Vec<Multiaddr>, MirrorError> {
        self.bootstrap
            .iter()
            .map(|b| self.bootstrap_addr(b))
            .collect()
    }
}

/// The mirrors listed in `dir`'s `mirrors.json` (none if the file is absent).
pub fn load(dir: &DataDir) -> Result<Vec<MirrorConfig>, MirrorError> {
    let path = dir.path(MIRRORS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(DataDirError::Io { path, source }.into()),
    };
    let list: Vec<MirrorConfig> =
        serde_json::from_slice(&bytes).map_err(|e| MirrorError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
    for m in &list {
        m.check().map_err(|e| MirrorError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
    }
    Ok(list)
}

fn save(dir: &DataDir, list: &[MirrorConfig]) -> Result<(), MirrorError> {
    let json = serde_json::to_vec_pretty(list).map_err(|e| MirrorError::Corrupt {
        path: dir.path(MIRRORS_FILE),
        why: e.to_string(),
    })?;
    Ok(dir.write_atomic(MIRRORS_FILE, &json)?)
}

/// Adds `m` to `mirrors.json`, replacing a mirror of the same network. Returns whether
/// one was replaced. Refuses the node's own network. A replaced mirror whose filter
/// changed loses its index (its instance must not be running): an index holds the logs
/// of the old filter, and a mirror serves exactly what its filter covers, so it starts
/// afresh and syncs the new subset. Its blobs stay for garbage collection to judge.
pub fn add(dir: &DataDir, m: MirrorConfig) -> Result<bool, MirrorError> {
    m.check()?;
    let own = dir.membership()?.network;
    if m.network == own {
        return Err(MirrorError::OwnNetwork(own));
    }
    let mut list = load(dir)?;
    let old = list.iter().find(|x| x.network == m.network).cloned();
    list.retain(|x| x.network != m.network);
    let replaced = old.is_some();
    if let Some(old) = old
        && old.filter != m.filter
    {
        let path = mirror_dir(dir, &m.network).join("index.redb");
        if let Err(source) = std::fs::remove_file(&path)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            return Err(DataDirError::Io { path, source }.into());
        }
    }
    if list.len() >= MAX_MIRRORS {
        return Err(MirrorError::OverLimit(format!(
            "this node has {MAX_MIRRORS} mirrors already, the most it keeps"
        )));
    }
    list.push(m);
    save(dir, &list)?;
    Ok(replaced)
}

/// Removes the mirror of `network` from `mirrors.json` and deletes its index. Its blobs
/// stay in the shared store until garbage collection frees those nothing else holds.
pub fn remove(dir: &DataDir, network: &NetworkId) -> Result<MirrorConfig, MirrorError> {
    let mut list = load(dir)?;
    let pos = list
        .iter()
        .position(|m| m.network == *network)
        .ok_or(MirrorError::NotFound(*network))?;
    let gone = list.remove(pos);
    save(dir, &list)?;
    let mdir = mirror_dir(dir, network);
    if let Err(source) = std::fs::remove_dir_all(&mdir)
        && source.kind() != std::io::ErrorKind::NotFound
    {
        return Err(DataDirError::Io { path: mdir, source }.into());
    }
    Ok(gone)
}

/// The directory of one mirror's index and keys.
pub fn mirror_dir(dir: &DataDir, network: &NetworkId) -> PathBuf {
    dir.path(MIRRORS_DIR).join(network.to_string())
}

#[cfg(test)]
mod tests;

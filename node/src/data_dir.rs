//! The node's data directory: keys, network membership, API token, index and blobs.
//!
//! ```text
//! DIR/publisher.key   Ed25519 seed that signs records (0600)
//! DIR/node.key        libp2p identity seed (0600)
//! DIR/network.json    the network this node belongs to
//! DIR/api.token       bearer token for write endpoints of the local API (0600)
//! DIR/index.redb      the redb index
//! DIR/blobs/          verified blobs, named by CID; partial/ and tmp/ inside
//! DIR/node.json       written by a running node: peer id, addresses, API URL
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_protocol::{Keypair, NetworkId};
use serde::{Deserialize, Serialize};

/// Errors reading or writing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// File system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not initialized.
    #[error(
        "{0} is not initialized: run `ferry init --new-network` or `ferry init --network <ID>` first"
    )]
    NotInitialized(PathBuf),
    /// Already initialized.
    #[error("{0} is already initialized for network {1}")]
    AlreadyInitialized(PathBuf, String),
    /// A file has unexpected contents.
    #[error("{path} is corrupt: {why}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `network.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    /// The network id.
    pub network: NetworkId,
    /// The genesis record's envelope bytes in hex, when this node created the network
    /// (joiners learn it by sync and check it against `network`).
    pub genesis: Option<String>,
}

/// What a running node publishes in `node.json` for its clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// libp2p peer id.
    pub peer_id: String,
    /// Listen addresses, each ending in `/p2p/<peer id>`.
    pub addrs: Vec<String>,
    /// Base URL of the local HTTP API.
    pub api: String,
    /// Process id, so tools can tell a stale file from a live node.
    pub pid: u32,
}

/// A data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens (creating if needed) the directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, DataDirError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Self { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes a secret file with mode 0600, atomically.
    pub fn write_secret(&self, name: &str, bytes: &[u8]) -> Result<(), DataDirError> {
        let path = self.path(name);
        let tmp = self.path(&format!(".{name}.tmp"));
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(())
    }

    /// Writes a file atomically (temp file + rename).
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), DataDirError> {
        let path = self.path(name);
        let tmp = self.path(&format!(".{name}.tmp"));
        fs::write(&tmp, bytes).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(())
    }

    fn read_seed(&self, name: &str) -> Result<Option<[u8; 32]>, DataDirError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(b) => {
                let seed: [u8; 32] =
                    b.as_slice().try_into().map_err(|_| DataDirError::Corrupt {
                        path: path.clone(),
                        why: format!("{} bytes, expected a 32-byte key seed", b.len()),
                    })?;
                Ok(Some(seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The seed in `name`, created from `fresh` when absent.
    pub fn seed_or_create(&self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], DataDirError> {
        if let Some(s) = self.read_seed(name)? {
            return Ok(s);
        }
        self.write_secret(name, &fresh)?;
        Ok(fresh)
    }

    /// The publisher key, if created.
    pub fn publisher_key(&self) -> Result<Keypair, DataDirError> {
        self.read_seed("publisher.key")?
            .map(Keypair::from_seed)
            .ok_or_else(|| DataDirError::NotInitialized(self.root.clone()))
    }

    /// The network membership, if initialized.
    pub fn membership(&self) -> Result<Membership, DataDirError> {
        let path = self.path("network.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DataDirError::NotInitialized(self.root.clone()));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| DataDirError::Corrupt {
            path,
            why: e.to_string(),
        })
    }

    /// Records network membership; refuses to switch networks.
    pub fn set_membership(&self, m: &Membership) -> Result<(), DataDirError> {
        if let Ok(old) = self.membership() {
            return Err(DataDirError::AlreadyInitialized(
                self.root.clone(),
                old.network.to_string(),
            ));
        }
        let json = serde_json::to_vec_pretty(m).unwrap_or_default();
        self.write_atomic("network.json", &json)
    }

    /// The API token, created from `fresh` random bytes when absent.
    pub fn api_token(&self, fresh: [u8; 32]) -> Result<String, DataDirError> {
        let path = self.path("api.token");
        match fs::read_to_string(&path) {
            Ok(t) => Ok(t.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let t = hex::encode(fresh);
                self.write_secret("api.token", t.as_bytes())?;
                Ok(t)
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Reads `node.json` of a running node.
    pub fn node_info(&self) -> Result<NodeInfo, DataDirError> {
        let path = self.path("node.json");
        let bytes = fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| DataDirError::Corrupt {
            path,
            why: e.to_string(),
        })
    }
}

/// 32 random bytes from the operating system.
pub fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The OS RNG failing is not recoverable for a node that must make keys.
    if let Err(e) = getrandom::fill(&mut b) {
        panic!("the operating system's random number generator failed: {e}");
    }
    b
}

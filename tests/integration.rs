//! Multi-node integration tests: real `ferry` daemons on 127.0.0.1, driven through the CLI.
//!
//! * `fresh`: two nodes and components built in-process; runs on a fresh clone.
//! * `e2e`: the whole corpus over four nodes (needs `FERRY_CORPUS`).
//! * `adversary`: crafted records from attacker peers, and an equivocation.
//! * `trust`: yank, unyank, grants, revocations, deletion and license policy via the CLI.
//! * `crash`: SIGKILL in the middle of a large download, and an offline provider.
//! * `lock`: ferry.toml / ferry.lock: lock, install, update, yanked and deleted content.
//! * `wit`: `ferry wit fetch` (built packages, and the corpus's WASI) and `ferry new`.
//! * `pins`: seven nodes with different pins converge on exactly their blobs; gc beside a
//!   running download.
//! * `mirror`: snapshots carried to an offline node, and live filtered mirrors.
//! * `download`: the cache, a killed client, a killed node, a killed provider and a
//!   lying provider, all checked against the transfer counters.
//! * `assets`: assets trees round-trip; links and hostile trees are refused.

mod integration {
    pub mod adversary;
    pub mod assets;
    pub mod corpus;
    pub mod crash;
    pub mod discovery;
    pub mod download;
    pub mod e2e;
    pub mod fresh;
    pub mod lock;
    pub mod lying_peer;
    pub mod mirror;
    pub mod pins;
    pub mod support;
    pub mod trust;
    pub mod wit;
}

//! The combined behaviour. Its own module because the derive generates an event enum
//! whose variants cannot carry doc comments.
#![allow(missing_docs)]

use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, kad, ping, request_response};

use ferry_protocol::wire::{BlobRequest, BlobResponse, SyncRequest, SyncResponse};

/// All behaviours of a Ferry node.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Record announcements.
    pub gossipsub: gossipsub::Behaviour,
    /// Provider records and peer routing.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Log sync.
    pub sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    /// Blob chunks.
    pub blob: request_response::cbor::Behaviour<BlobRequest, BlobResponse>,
    /// Learns peers' listen addresses.
    pub identify: identify::Behaviour,
    /// Keeps idle connections measured and alive.
    pub ping: ping::Behaviour,
}

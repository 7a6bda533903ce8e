//! The combined behaviour. Its own module because the derive generates an event enum
//! whose variants cannot carry doc comments.
#![allow(missing_docs)]

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, gossipsub, identify, identity, kad, ping, request_response};

use super::{
    BLOB_PROTOCOL, IDENTIFY_PROTOCOL, KAD_PROTOCOL, MAX_BLOB_RESPONSE_BYTES, MAX_GOSSIP_BYTES,
    MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES, REQUEST_TIMEOUT, SYNC_PROTOCOL,
};

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
    /// Measures round-trip times (it no longer keeps connections alive).
    pub ping: ping::Behaviour,
}

/// Every behaviour of a Ferry node, configured for `key`; gossipsub records its
/// metrics into `metrics` when given.
pub(super) fn new(
    key: &identity::Keypair,
    metrics: Option<&mut libp2p::metrics::Registry>,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let peer_id = key.public().to_peer_id();
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        // Gossipsub's default of one second: every heartbeat scores and gossips to
        // every known peer, and at 500 ms heartbeats were a tenth of the CPU of a
        // 200-node simulation. Publishing does not wait for a heartbeat.
        .heartbeat_interval(Duration::from_secs(1))
        .validation_mode(gossipsub::ValidationMode::Strict)
        // We accept and forward a message only after the protocol validated it.
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        // Ids are content hashes: the same record from two peers is one message.
        .message_id_fn(|m| {
            gossipsub::MessageId::from(ferry_protocol::content_id::sha256(&m.data).to_vec())
        })
        .build()?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_cfg,
    )?;
    if let Some(registry) = metrics {
        gossipsub = gossipsub.with_metrics(registry, Default::default());
    }
    // Peer scoring makes rejected messages cost their sender. Colocation is
    // switched off: every test and simulation puts many peers on 127.0.0.1.
    let params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        app_specific_weight: 1.0,
        ..Default::default()
    };
    gossipsub.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;

    // The default caps provided keys at 1,024: far fewer than the blobs a
    // mirror serves.
    let store_cfg = kad::store::MemoryStoreConfig {
        max_provided_keys: 1 << 20,
        max_records: 1 << 16,
        ..Default::default()
    };
    let mut kad_cfg = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    kad_cfg.set_query_timeout(Duration::from_secs(30));
    let mut kad = kad::Behaviour::with_config(
        peer_id,
        kad::store::MemoryStore::with_config(peer_id, store_cfg),
        kad_cfg,
    );
    // Without a confirmed external address kad would stay a client and nobody
    // could find our provider records.
    kad.set_mode(Some(kad::Mode::Server));

    let rr_cfg = request_response::Config::default()
        .with_request_timeout(REQUEST_TIMEOUT)
        .with_max_concurrent_streams(64);
    let sync = request_response::cbor::Behaviour::with_codec(
        request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(MAX_SYNC_REQUEST_BYTES)
            .set_response_size_maximum(MAX_SYNC_RESPONSE_BYTES),
        [(
            StreamProtocol::new(SYNC_PROTOCOL),
            request_response::ProtocolSupport::Full,
        )],
        rr_cfg.clone(),
    );
    let blob = request_response::cbor::Behaviour::with_codec(
        request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(MAX_SYNC_REQUEST_BYTES)
            .set_response_size_maximum(MAX_BLOB_RESPONSE_BYTES),
        [(
            StreamProtocol::new(BLOB_PROTOCOL),
            request_response::ProtocolSupport::Full,
        )],
        rr_cfg,
    );
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
            .with_push_listen_addr_updates(true),
    );
    let ping = ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(60)));
    Ok(Behaviour {
        gossipsub,
        kad,
        sync,
        blob,
        identify,
        ping,
    })
}

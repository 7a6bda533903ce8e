//! The libp2p side: transports, behaviours, topics, DHT keys and the dial policy.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ferry_protocol::{ContentId, Namespace, NetworkId};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade;
use libp2p::multiaddr::Protocol;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, Transport, gossipsub, identify,
    identity, kad, noise, ping, quic, request_response, tcp, yamux,
};

/// Protocol name of Ferry's Kademlia DHT (never the IPFS one).
pub const KAD_PROTOCOL: &str = "/ferry/kad/1.0.0";
/// Protocol name of log sync.
pub const SYNC_PROTOCOL: &str = "/ferry/sync/1.0.0";
/// Protocol name of blob chunk transfer.
pub const BLOB_PROTOCOL: &str = "/ferry/blob/1.0.0";
/// Identify's protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/ferry/1.0.0";
/// Largest sync request; requests are tiny.
const MAX_SYNC_REQUEST_BYTES: u64 = 64 * 1024;
/// Largest sync response: a page of records or heads.
const MAX_SYNC_RESPONSE_BYTES: u64 = 9 * 1024 * 1024;
/// Largest blob response: one chunk plus framing.
const MAX_BLOB_RESPONSE_BYTES: u64 = (ferry_protocol::chunk::CHUNK_SIZE as u64) + 64 * 1024;
/// Largest gossip message: one record plus gossipsub framing.
const MAX_GOSSIP_BYTES: usize = 64 * 1024;
/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

mod behaviour;
pub use behaviour::{Behaviour, BehaviourEvent};

/// Which addresses a node may dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialPolicy {
    /// Only 127.0.0.0/8 and ::1: for local networks and all tests.
    LoopbackOnly,
    /// Any address.
    Any,
}

impl DialPolicy {
    /// Whether `addr` may be dialed.
    pub fn allows(&self, addr: &Multiaddr) -> bool {
        match self {
            DialPolicy::Any => true,
            DialPolicy::LoopbackOnly => match addr.iter().next() {
                Some(Protocol::Ip4(ip)) => ip.is_loopback(),
                Some(Protocol::Ip6(ip)) => ip.is_loopback(),
                _ => false,
            },
        }
    }
}

/// A transport that refuses to dial addresses its policy forbids, so no behaviour (the
/// DHT, identify, a request-response auto-dial) can make the node connect elsewhere.
struct Filtered<T> {
    inner: T,
    policy: DialPolicy,
}

impl<T: Transport + Unpin> Transport for Filtered<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<T::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<T::Dial, TransportError<T::Error>> {
        if !self.policy.allows(&addr) {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.inner.dial(addr, opts)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<T::ListenerUpgrade, T::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}

/// Gossip topic of a network's operator log.
pub fn operator_topic(net: &NetworkId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("/ferry/{net}/operator"))
}

/// Gossip topic of one namespace.
pub fn namespace_topic(net: &NetworkId, ns: &Namespace) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("/ferry/{net}/ns/{ns}"))
}

/// DHT key under which providers of a blob are announced.
pub fn blob_key(net: &NetworkId, content: &ContentId) -> kad::RecordKey {
    let mut k = b"/ferry/blob/".to_vec();
    k.extend_from_slice(&net.to_bytes());
    k.push(b'/');
    k.extend_from_slice(&content.to_bytes());
    kad::RecordKey::new(&k)
}

/// Errors building the swarm.
#[derive(Debug, thiserror::Error)]
#[error("building the libp2p swarm: {0}")]
pub struct SwarmError(String);

/// Builds the swarm for `key`.
pub fn build(key: identity::Keypair, policy: DialPolicy) -> Result<Swarm<Behaviour>, SwarmError> {
    let err = |e: &dyn std::fmt::Display| SwarmError(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .upgrade(upgrade::Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            let quic = quic::tokio::Transport::new(quic::Config::new(key))
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            let both = quic
                .or_transport(tcp)
                .map(|either, _| either.into_inner())
                .boxed();
            Ok(Filtered {
                inner: both,
                policy,
            })
        })
        .map_err(|e| err(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let gossip_cfg = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_millis(500))
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
            let ping =
                ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15)));
            Ok(Behaviour {
                gossipsub,
                kad,
                sync,
                blob,
                identify,
                ping,
            })
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

/// `addr` with `/p2p/<peer>` appended (unless present).
pub fn with_peer(addr: &Multiaddr, peer: &PeerId) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.clone()
    } else {
        addr.clone().with(Protocol::P2p(*peer))
    }
}

/// The peer id at the end of `addr`, if any.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) => Some(p),
        _ => None,
    }
}

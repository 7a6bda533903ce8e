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
    Multiaddr, PeerId, Swarm, SwarmBuilder, Transport, gossipsub, identity, kad, noise, quic, tcp,
    yamux,
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
/// How long a connection no behaviour needs stays open. Gossip mesh peers keep theirs;
/// the peers a DHT query or a sync round touched are let go soon after, so a node's
/// connections do not grow into a full mesh of the network (at 120 s every node of a
/// 100-node simulation ended up connected to all 99 others).
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);

mod behaviour;
pub use behaviour::{Behaviour, BehaviourEvent};

/// Which addresses a node may dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialPolicy {
    /// Only 127.0.0.0/8 and ::1: for local networks and all tests.
    LoopbackOnly,
    /// Any address.
    Any,
    /// Only libp2p's in-process memory transport (`/memory/<port>`): simulations.
    MemoryOnly,
}

impl DialPolicy {
    /// Whether `addr` may be dialed.
    pub fn allows(&self, addr: &Multiaddr) -> bool {
        match self {
            DialPolicy::Any => true,
            DialPolicy::MemoryOnly => matches!(addr.iter().next(), Some(Protocol::Memory(_))),
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
pub(crate) struct Filtered<T> {
    pub(crate) inner: T,
    pub(crate) policy: DialPolicy,
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

/// Builds the swarm for `key`: TCP and QUIC, filtered by `policy`.
pub fn build(key: identity::Keypair, policy: DialPolicy) -> Result<Swarm<Behaviour>, SwarmError> {
    assemble(
        key,
        |key| {
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
            }
            .boxed())
        },
        None,
    )
}

/// A transport whose connections are authenticated and multiplexed.
pub(crate) type Muxed = libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>;

/// Builds a swarm over the transport `transport` makes for `key`, with every Ferry
/// behaviour. Gossipsub records its metrics into `metrics` when given.
pub(crate) fn assemble(
    key: identity::Keypair,
    transport: impl FnOnce(
        &identity::Keypair,
    ) -> Result<Muxed, Box<dyn std::error::Error + Send + Sync>>,
    metrics: Option<&mut libp2p::metrics::Registry>,
) -> Result<Swarm<Behaviour>, SwarmError> {
    let err = |e: &dyn std::fmt::Display| SwarmError(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(transport)
        .map_err(|e| err(&e))?
        .with_behaviour(|key| behaviour::new(key, metrics))
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
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

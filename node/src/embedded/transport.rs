//! The in-process transport: libp2p's memory transport with noise and yamux, a byte
//! counter under the encryption (so it counts what a wire would carry), and the
//! partition gate above the multiplexer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use futures::task::AtomicWaker;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent, SubstreamBox};
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::{PeerId, Transport, identity, noise, yamux};

use super::gate::Gate;
use crate::swarm::{DialPolicy, Filtered, Muxed};

/// Bytes one node's connections carried, counted below noise and yamux.
#[derive(Debug, Default)]
pub struct Traffic {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Traffic {
    /// Bytes written to all connections so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bytes read from all connections so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// A raw connection that adds what passes through it to a [`Traffic`].
struct Counted<S> {
    inner: S,
    traffic: Arc<Traffic>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.traffic
                .received
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.traffic.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// A multiplexed connection that fails as soon as the gate separates its two ends.
struct Gated {
    inner: StreamMuxerBox,
    gate: Arc<Gate>,
    local: PeerId,
    remote: PeerId,
    waker: Arc<AtomicWaker>,
}

impl Gated {
    fn check(&self) -> io::Result<()> {
        if self.gate.allows(&self.local, &self.remote) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("partitioned from {}", self.remote),
            ))
        }
    }
}

impl StreamMuxer for Gated {
    type Substream = SubstreamBox;
    type Error = io::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_inbound(cx)
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        // Registered before the check, so a split that lands in between still wakes us.
        this.waker.register(cx.waker());
        this.check()?;
        Pin::new(&mut this.inner).poll(cx)
    }
}

/// The memory transport for `key`: counted into `traffic`, gated by `gate`, dialing
/// only `/memory/` addresses.
pub(super) fn memory(
    key: &identity::Keypair,
    traffic: Arc<Traffic>,
    gate: Option<Arc<Gate>>,
) -> Result<Muxed, Box<dyn std::error::Error + Send + Sync>> {
    let local = key.public().to_peer_id();
    let muxed = MemoryTransport::default()
        .map(move |chan, _| Counted {
            inner: chan,
            traffic: traffic.clone(),
        })
        .upgrade(upgrade::Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .and_then(move |(remote, muxer), _| {
            let out = match &gate {
                // Refused after the handshake: the dialer learns who answered only then.
                Some(g) if !g.allows(&local, &remote) => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("partitioned from {remote}"),
                )),
                Some(g) => {
                    let waker = Arc::new(AtomicWaker::new());
                    g.register(&waker);
                    let gated = Gated {
                        inner: StreamMuxerBox::new(muxer),
                        gate: g.clone(),
                        local,
                        remote,
                        waker,
                    };
                    Ok((remote, StreamMuxerBox::new(gated)))
                }
                None => Ok((remote, StreamMuxerBox::new(muxer))),
            };
            futures::future::ready(out)
        })
        .map_err(io::Error::other)
        .boxed();
    Ok(Filtered {
        inner: muxed,
        policy: DialPolicy::MemoryOnly,
    }
    .boxed())
}

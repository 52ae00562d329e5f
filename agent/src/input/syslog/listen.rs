//! The syslog input's sockets: a UDP receiver, and a TCP (optionally TLS)
//! listener with one task per connection. Every task hands messages to
//! the ingest thread through the input's bounded channel.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use auditship_core::Flags;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::framing::{Frame, Framer};
use super::{Ctx, Message};
use crate::input::net;

/// Receives datagrams, one message each, until the input stops. A full
/// channel drops the message: UDP has no way to make the sender wait.
pub(super) async fn udp(sock: UdpSocket, ctx: Arc<Ctx>) {
    // The largest UDP payload; a datagram is never cut by the buffer.
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(input = %ctx.name, error = %e, "UDP receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let mut msg = &buf[..n];
        while let [rest @ .., b'\n' | b'\r' | b'\0'] = msg {
            msg = rest;
        }
        if msg.is_empty() {
            ctx.counters.invalid.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut flags = Flags::default();
        if msg.len() > ctx.max_message {
            msg = &msg[..ctx.max_message];
            flags.insert(Flags::TRUNCATED);
        }
        let m = Message {
            bytes: msg.to_vec(),
            flags,
            peer,
        };
        match ctx.tx.try_send(m) {
            Ok(()) => ctx.bell.ring(),
            Err(TrySendError::Full(_)) => {
                ctx.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = ctx.drop_log.hit() {
                    tracing::warn!(input = %ctx.name, dropped = n,
                        "UDP syslog messages dropped: the agent is not queueing them fast enough \
                         (its queue is full or ingest is behind); use TCP for backpressure");
                }
                ctx.bell.ring();
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
}

/// Accepts TCP connections until the input stops, at most
/// `max_connections` at a time; each is read by its own task.
pub(super) async fn tcp(listener: TcpListener, tls: Option<TlsAcceptor>, ctx: Arc<Ctx>) {
    let slots = Arc::new(Semaphore::new(ctx.max_connections));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(input = %ctx.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            ctx.counters.rejected.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = ctx.refuse_log.hit() {
                tracing::warn!(input = %ctx.name, %peer, refused = n, max_connections = ctx.max_connections,
                    "syslog connections refused: too many open");
            }
            continue;
        };
        ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
        let (tls, task_ctx) = (tls.clone(), ctx.clone());
        ctx.tasks.spawn(async move {
            let ctx = task_ctx;
            ctx.counters.connections.fetch_add(1, Ordering::Relaxed);
            match tls {
                Some(acceptor) => match net::handshake(&acceptor, tcp, peer).await {
                    Some(stream) => read(stream, peer, &ctx).await,
                    None => {
                        ctx.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
                    }
                },
                None => read(tcp, peer, &ctx).await,
            }
            ctx.counters.connections.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
}

/// Reads one connection: frames messages and sends each to the channel,
/// waiting while it is full (so the sender is slowed down by TCP, nothing
/// is dropped). Ends at end of stream, after `idle_timeout` without data,
/// or when the input stops.
async fn read<S: AsyncRead + Unpin>(mut stream: S, peer: SocketAddr, ctx: &Ctx) {
    let mut framer = Framer::new(ctx.max_message);
    let mut buf = vec![0u8; 64 << 10];
    let mut frames = Vec::new();
    let mut counted = 0;
    loop {
        let n = tokio::select! {
            _ = ctx.stop.cancelled() => 0,
            r = tokio::time::timeout(ctx.idle_timeout, stream.read(&mut buf)) => match r {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::debug!(input = %ctx.name, %peer, error = %e, "syslog connection failed");
                    0
                }
                Err(_) => {
                    tracing::debug!(input = %ctx.name, %peer, "syslog connection idle; closing it");
                    0
                }
            },
        };
        if n == 0 {
            if ctx.stop.is_cancelled() {
                if !framer.is_idle() {
                    // Half a message, and no sender to hand the rest: count it.
                    ctx.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                framer.finish(&mut |f| frames.push(f));
            }
        } else {
            framer.push(&buf[..n], &mut |f| frames.push(f));
        }
        ctx.counters
            .invalid
            .fetch_add(framer.invalid - counted, Ordering::Relaxed);
        counted = framer.invalid;
        for f in frames.drain(..) {
            if !send(ctx, f, peer).await {
                return;
            }
        }
        if n == 0 {
            return;
        }
    }
}

/// Sends a message, waiting while the channel is full; false once the
/// input stops (the message is counted as dropped).
async fn send(ctx: &Ctx, f: Frame, peer: SocketAddr) -> bool {
    let m = Message {
        bytes: f.bytes,
        flags: f.flags,
        peer,
    };
    let sent = match ctx.tx.try_send(m) {
        Ok(()) => true,
        Err(TrySendError::Closed(_)) => false,
        Err(TrySendError::Full(m)) => {
            ctx.bell.ring();
            tokio::select! {
                r = ctx.tx.send(m) => r.is_ok(),
                _ = ctx.stop.cancelled() => false,
            }
        }
    };
    if sent {
        ctx.bell.ring();
    } else {
        ctx.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
    sent
}

//! The syslog listener: network devices, rsyslog and `logger` forward
//! syslog messages to the agent over UDP, TCP, or TCP with TLS.
//!
//! * **UDP** (`udp_address`): one message per datagram (trailing LF, CR and
//!   NUL removed).
//! * **TCP** (`tcp_address`): octet counting or LF framing, detected per
//!   message (RFC 6587; see [`framing`]). With `tls`, TCP is TLS (RFC 5425,
//!   which uses octet counting), set up like the collector's listener;
//!   `client_ca_file` requires client certificates (mutual TLS). At most
//!   `max_connections` at once (more are refused and counted); a connection
//!   idle for `idle_timeout` is closed.
//!
//! Messages longer than `max_message_bytes` keep their first
//! `max_message_bytes` and are flagged `truncated`. Every message goes
//! through the syslog-framed auth parser (`<PRI>`, RFC 3164 and RFC 5424
//! headers, then sshd, sudo, su, PAM, shadow-utils, logind), exactly as a
//! line of `/var/log/auth.log` would; `source` is `<input>:<peer IP>`, and
//! `fields.syslog_peer` keeps the peer's address and port.
//!
//! # What is guaranteed, and what is not
//!
//! Messages go from the sockets to the ingest thread through a bounded
//! channel.
//!
//! * **TCP: backpressure, no drops.** When the channel is full (the queue
//!   is full and inputs are paused, or ingest is behind), a connection's
//!   task waits before sending its next message and stops reading the
//!   socket meanwhile, so TCP flow control makes the sender wait. Nothing
//!   is dropped while the agent runs.
//! * **TCP: no acknowledgement.** Plain and TLS syslog over TCP (RFC 6587,
//!   RFC 5425) have no application-level acknowledgement: a sender cannot
//!   know what the agent has made durable. Messages the agent has read but
//!   not yet committed to the queue (in the channel, or appended but not
//!   yet fsynced: up to about one pass plus the channel's
//!   [`CHANNEL_MESSAGES`]) are lost if the agent is SIGKILLed, and so is
//!   whatever sat in the kernel's socket buffers. On SIGTERM the input stops
//!   reading and the last pass queues what the channel holds; only a
//!   message a connection was still waiting to hand over (the channel was
//!   full) or had half read is lost, and counted as `dropped`. Reliable
//!   delivery needs an acknowledging protocol such as RELP (rsyslog's
//!   `omrelp`), which this input does not implement yet; until then, for
//!   records that must not be lost, have rsyslog write a file and tail that
//!   file with a file input.
//! * **UDP: drops are counted.** UDP cannot make a sender wait: a datagram
//!   that arrives while the channel is full is dropped, counted
//!   (`dropped`) and logged (at most one warning per 10 s, with the count).
//!   Datagrams the kernel drops when its receive buffer overflows are not
//!   seen by the agent at all (`netstat -su`, "receive buffer errors").
//! * **No positions.** There is nothing to resume after a restart, so the
//!   input's lines use the stream [`NO_POSITION`] and add nothing to the
//!   queue's positions or snapshots.
//!
//! Bad data is never fatal: broken framing is counted (`invalid`) and the
//! bytes are still delivered (see [`framing`]); a message the parsers do
//! not understand becomes an `unparsed` event that keeps it whole.

pub mod framing;
mod listen;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditship_core::Flags;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::net::{self, NetCounters, RateLimited, ServerTls};
use super::{Bell, Input, InputError, InputStats, Line, Sink, NO_POSITION};

/// Messages buffered between the sockets and the ingest thread.
pub const CHANNEL_MESSAGES: usize = 4096;

/// The `fields` key of the sender's address.
pub const PEER_FIELD: &str = "syslog_peer";

/// Settings of one syslog input.
#[derive(Clone, Debug)]
pub struct SyslogConfig {
    /// Input name.
    pub name: String,
    /// Receive UDP here.
    pub udp_address: Option<SocketAddr>,
    /// Accept TCP (or TLS) connections here.
    pub tcp_address: Option<SocketAddr>,
    /// TLS on the TCP listener.
    pub tls: Option<ServerTls>,
    /// Longest message kept.
    pub max_message_bytes: usize,
    /// Most TCP connections open at once.
    pub max_connections: usize,
    /// A TCP connection without data for this long is closed.
    pub idle_timeout: Duration,
}

impl SyslogConfig {
    /// Defaults for an input named `name` (no addresses yet).
    pub fn new(name: &str) -> Self {
        SyslogConfig {
            name: name.to_string(),
            udp_address: None,
            tcp_address: None,
            tls: None,
            max_message_bytes: 64 << 10,
            max_connections: 256,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// One message from the network.
struct Message {
    bytes: Vec<u8>,
    flags: Flags,
    peer: SocketAddr,
}

/// What the socket tasks share.
struct Ctx {
    name: String,
    max_message: usize,
    max_connections: usize,
    idle_timeout: Duration,
    tx: mpsc::Sender<Message>,
    bell: Bell,
    stop: CancellationToken,
    tasks: TaskTracker,
    counters: NetCounters,
    drop_log: RateLimited,
    refuse_log: RateLimited,
}

/// Receives syslog messages. See the module docs.
pub struct SyslogInput {
    name: String,
    rx: mpsc::Receiver<Message>,
    ctx: Arc<Ctx>,
    udp_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    stats: InputStats,
}

impl SyslogInput {
    /// Loads the TLS files, binds the addresses and starts receiving on the
    /// current tokio runtime (call it inside one).
    pub fn new(cfg: SyslogConfig, bell: Bell) -> Result<Self, InputError> {
        let name = cfg.name.clone();
        let tls = cfg
            .tls
            .as_ref()
            .map(|t| t.acceptor(&name, false))
            .transpose()?;
        let udp = cfg
            .udp_address
            .map(|a| net::bind_udp(&name, a))
            .transpose()?;
        let tcp = cfg
            .tcp_address
            .map(|a| net::bind_tcp(&name, a))
            .transpose()?;
        let udp_addr = udp.as_ref().and_then(|s| s.local_addr().ok());
        let tcp_addr = tcp.as_ref().and_then(|s| s.local_addr().ok());
        let (tx, rx) = mpsc::channel(CHANNEL_MESSAGES);
        let ctx = Arc::new(Ctx {
            name: name.clone(),
            max_message: cfg.max_message_bytes,
            max_connections: cfg.max_connections,
            idle_timeout: cfg.idle_timeout,
            tx,
            bell,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            counters: NetCounters::default(),
            drop_log: RateLimited::new(Duration::from_secs(10)),
            refuse_log: RateLimited::new(Duration::from_secs(10)),
        });
        if let Some(s) = udp {
            ctx.tasks.spawn(listen::udp(s, ctx.clone()));
        }
        if let Some(l) = tcp {
            ctx.tasks.spawn(listen::tcp(l, tls, ctx.clone()));
        }
        tracing::info!(input = %name, udp = ?udp_addr, tcp = ?tcp_addr, tls = cfg.tls.is_some(),
            "syslog input listening");
        Ok(SyslogInput {
            name,
            rx,
            ctx,
            udp_addr,
            tcp_addr,
            stats: InputStats::default(),
        })
    }

    /// The UDP address it receives on (useful with port 0).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// The TCP address it listens on (useful with port 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }
}

impl Input for SyslogInput {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "syslog"
    }

    fn poll(&mut self, sink: &mut dyn Sink, budget: usize) -> Result<u64, InputError> {
        let mut read = 0u64;
        while read < budget as u64 {
            let Ok(m) = self.rx.try_recv() else {
                break;
            };
            sink.line(Line {
                stream: NO_POSITION,
                position: b"",
                bytes: &m.bytes,
                flags: m.flags,
                path: None,
                peer: Some((PEER_FIELD, m.peer)),
            })?;
            read += m.bytes.len() as u64 + 1;
            self.stats.lines += 1;
        }
        self.stats.bytes += read;
        Ok(read)
    }

    fn stats(&self) -> InputStats {
        self.ctx.counters.stats(self.stats)
    }

    fn stop(&mut self) {
        self.halt();
    }
}

impl SyslogInput {
    /// Stops reading and closes the sockets, waiting (at most 2 s) for the
    /// socket tasks to end: they hand over what they already framed (at
    /// once unless the channel is full), so the last poll queues it, and
    /// the pipeline a reload starts next can bind the same addresses.
    fn halt(&self) {
        self.ctx.stop.cancel();
        self.ctx.tasks.close();
        let until = Instant::now() + Duration::from_secs(2);
        while !self.ctx.tasks.is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SyslogInput {
    fn drop(&mut self) {
        self.halt();
        let lost = self.rx.len();
        if lost > 0 {
            // Only when the agent stops with the queue refusing appends.
            tracing::warn!(input = %self.name, messages = lost, "syslog messages received but not queued are lost");
        }
    }
}

#[cfg(test)]
mod tests;

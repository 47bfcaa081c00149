//! The inbound half of the packet path and the buffers of both halves.
//!
//! `ipsec-peer` spreads its work over two threads (or two tasks of one thread with
//! `--threads 1`), one per direction, each with its own ESP engine so that neither waits for
//! the other and each direction keeps its packet order:
//!
//! ```text
//!   main thread (control + outbound)          inbound thread
//!   ───────────────────────────────           ──────────────
//!   IKE, timers, signals, stats               UDP 4500 (recvmmsg + UDP GRO, split by stride)
//!   TUN read (virtio-net header, TSO)           → classify_udp_4500
//!     → split super-segment at ESP stride       → ESP: decapsulate in place (inbound engine)
//!     → SPD lookup once per super-segment         → copy into the write batch, joining
//!     → encapsulate in place (outbound engine)      the run of its flow (crate::gro)
//!     → one sendmsg with UDP GSO                → IKE: to the main thread (channel)
//!   lone packets: read into consecutive       TUN: one write per run of TCP or UDP
//!     slots, encrypted in place, sent as one     segments (a virtio-net GSO frame)
//!     GSO train (an iovec per packet)
//!                  ── RxCmd (install/remove/report) ──▶
//!                  ◀── Up (IKE datagrams, ESP events, reports) ──
//! ```
//!
//! The inbound engine holds the inbound SAs, the outbound engine the outbound SAs; IKE
//! events are routed to the engine of the SA's direction.
//!
//! Each descriptor is registered with the runtime of the one thread that reads it, for
//! readability only (see [`crate::net`]): otherwise every packet one thread sends or
//! receives would wake the other.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipsec_core::EspSaParams;
use ipsec_core::natt::{UdpPayload, classify_udp_4500};
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tun_rs::IDEAL_BATCH_SIZE;

use crate::esp_glue::{Esp, EspEvent, Provider, SaId, SaStats};
use crate::gro::Coalescer;
use crate::tun::TunDevice;

/// Size of one UDP receive buffer: a GRO-coalesced train of datagrams fits.
const RX_BUF: usize = 65536;
/// Receive buffers per `recvmmsg`.
const RX_BUFS: usize = 8;
/// `recvmmsg` calls per readiness event before commands get a turn.
const RX_ROUNDS: usize = 8;

/// `virtio_net_hdr.gso_type`: not a super-segment.
pub const GSO_NONE: u8 = 0;
/// `virtio_net_hdr.gso_type`: IPv4 TCP segmentation (TSO).
pub const GSO_TCPV4: u8 = 1;
/// `virtio_net_hdr.gso_type`: IPv6 TCP segmentation (TSO).
pub const GSO_TCPV6: u8 = 4;
/// `virtio_net_hdr.gso_type`: UDP segmentation (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `virtio_net_hdr.flags`: the transport checksum is partial (pseudo-header only).
pub const F_NEEDS_CSUM: u8 = 1;

/// Completes a partial transport checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): the field holds
/// the pseudo-header sum; the sum over `csum_start..` is added and complemented.
pub fn finish_checksum(pkt: &mut [u8], csum_start: u16, csum_offset: u16) -> bool {
    let start = usize::from(csum_start);
    let at = start + usize::from(csum_offset);
    if at + 2 > pkt.len() {
        return false;
    }
    let initial = u16::from_be_bytes([pkt[at], pkt[at + 1]]);
    pkt[at] = 0;
    pkt[at + 1] = 0;
    let sum = tun_rs::checksum(&pkt[start..], u64::from(initial));
    pkt[at..at + 2].copy_from_slice(&(!sum).to_be_bytes());
    true
}

/// A command from the main thread to the inbound loop.
#[derive(Debug)]
pub enum RxCmd {
    /// Install an inbound SA under the main thread's handle.
    Install {
        /// The main thread's name for it.
        handle: u64,
        /// Its parameters.
        params: Box<EspSaParams>,
    },
    /// Remove the SA with this handle.
    Remove(u64),
    /// Send an [`Up::Report`].
    Report,
    /// Stop the loop.
    Stop,
}

/// Counters of the inbound loop.
#[derive(Debug, Default, Clone, Copy)]
pub struct RxStats {
    /// Datagrams received (GRO trains counted per datagram).
    pub udp_rx: u64,
    /// Inner packets written to TUN (before coalescing).
    pub tun_tx: u64,
    /// TUN writes (frames of one or more packets) that failed.
    pub tun_tx_err: u64,
    /// ESP packets dropped by the engine.
    pub esp_drop: u64,
    /// NAT keepalives.
    pub keepalive: u64,
    /// IKE datagrams on a NAT-T port.
    pub ike_rx: u64,
    /// Neither ESP, IKE nor keepalive.
    pub invalid: u64,
    /// Drops before an SA was found.
    pub unattributed: u64,
}

/// Something the inbound loop hands to the main thread.
#[derive(Debug)]
pub enum Up {
    /// An IKE message received on a NAT-T socket (non-ESP marker included).
    Ike {
        /// The socket's address.
        local: SocketAddr,
        /// The sender.
        remote: SocketAddr,
        /// The UDP payload.
        payload: Vec<u8>,
    },
    /// A lifetime event of an inbound SA.
    Esp(EspEvent),
    /// Per-SA statistics (by handle) and counters.
    Report {
        /// `(handle, stats)` of every inbound SA.
        sas: Vec<(u64, SaStats)>,
        /// The counters.
        stats: RxStats,
    },
    /// The inbound SA with this handle could not be installed.
    InstallFailed(u64),
}

/// One NAT-T socket as the inbound loop sees it.
#[derive(Debug)]
pub struct RxSocket {
    /// A descriptor of the socket (see [`crate::net::clone_std`]).
    pub sock: std::net::UdpSocket,
    /// Its address.
    pub local: SocketAddr,
}

/// How the inbound loop runs.
#[derive(Debug)]
pub enum RxHandle {
    /// On its own thread with its own runtime.
    Thread(std::thread::JoinHandle<()>),
    /// As a task of the main thread's runtime.
    Task(tokio::task::JoinHandle<()>),
}

impl RxHandle {
    /// Waits for the loop to end (after [`RxCmd::Stop`]).
    pub async fn join(self) {
        match self {
            RxHandle::Thread(t) => {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            RxHandle::Task(t) => {
                let _ = t.await;
            }
        }
    }
}

/// Starts the inbound loop on its own thread (`own_thread`) or as a task of the current
/// runtime.
pub fn spawn(
    tun: Arc<TunDevice>,
    socks: Vec<RxSocket>,
    provider: Provider,
    cmds: mpsc::UnboundedReceiver<RxCmd>,
    up: mpsc::UnboundedSender<Up>,
    own_thread: bool,
) -> io::Result<RxHandle> {
    let fut = async move {
        match RxLoop::new(tun, socks, provider, up) {
            Ok(l) => l.run(cmds).await,
            Err(e) => tracing::error!(error = %e, "inbound loop not started"),
        }
    };
    if own_thread {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let t = std::thread::Builder::new()
            .name("ipsec-rx".into())
            .spawn(move || rt.block_on(fut))?;
        Ok(RxHandle::Thread(t))
    } else {
        Ok(RxHandle::Task(tokio::spawn(fut)))
    }
}

struct Sock {
    /// Registered for readability only (see [`crate::net`]).
    sock: AsyncFd<std::net::UdpSocket>,
    local: SocketAddr,
    state: UdpSocketState,
}

struct RxLoop {
    tun: Arc<TunDevice>,
    socks: Vec<Sock>,
    esp: Esp,
    /// Main-thread handle → engine id.
    handles: Vec<(u64, SaId)>,
    up: mpsc::UnboundedSender<Up>,
    stats: RxStats,
    /// `RX_BUFS` receive buffers of `RX_BUF` octets.
    rbuf: Vec<u8>,
    meta: [RecvMeta; RX_BUFS],
    /// The TUN write batch, coalesced (see [`crate::gro`]).
    gro: Coalescer,
    next_sock: usize,
}

impl RxLoop {
    fn new(
        tun: Arc<TunDevice>,
        socks: Vec<RxSocket>,
        provider: Provider,
        up: mpsc::UnboundedSender<Up>,
    ) -> io::Result<Self> {
        let mut v = Vec::new();
        for s in socks {
            s.sock.set_nonblocking(true)?;
            let state = UdpSocketState::new((&s.sock).into())?;
            v.push(Sock {
                sock: crate::net::register(s.sock, Interest::READABLE)?,
                local: s.local,
                state,
            });
        }
        let (offload, udp_gso) = (tun.get_ref().tcp_gso(), tun.get_ref().udp_gso());
        Ok(Self {
            tun,
            socks: v,
            esp: Esp::with_provider(provider),
            handles: Vec::new(),
            up,
            stats: RxStats::default(),
            rbuf: vec![0; RX_BUF * RX_BUFS],
            meta: [RecvMeta::default(); RX_BUFS],
            gro: Coalescer::new(IDEAL_BATCH_SIZE, offload, udp_gso),
            next_sock: 0,
        })
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<RxCmd>) {
        loop {
            let far = Instant::now() + Duration::from_secs(3600);
            let deadline = self.esp.poll_timeout().unwrap_or(far);
            tokio::select! {
                biased;
                c = cmds.recv() => match c {
                    Some(RxCmd::Stop) | None => break,
                    Some(c) => self.on_cmd(c),
                },
                r = readable_any(&self.socks, self.next_sock) => match r {
                    Ok(i) => {
                        self.next_sock = (i + 1) % self.socks.len().max(1);
                        self.on_udp(i);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "UDP socket");
                        break;
                    }
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    self.esp.handle_timeout(Instant::now());
                }
            }
            while let Some(ev) = self.esp.poll_event() {
                let _ = self.up.send(Up::Esp(ev));
            }
        }
    }

    fn on_cmd(&mut self, c: RxCmd) {
        match c {
            RxCmd::Install { handle, params } => {
                let spi = params.spi;
                match self.esp.install(Instant::now(), *params) {
                    Ok(id) => self.handles.push((handle, id)),
                    Err(e) => {
                        tracing::error!(error = %e, %spi, "inbound SA not installed");
                        let _ = self.up.send(Up::InstallFailed(handle));
                    }
                }
            }
            RxCmd::Remove(handle) => {
                if let Some(i) = self.handles.iter().position(|(h, _)| *h == handle) {
                    let (_, id) = self.handles.swap_remove(i);
                    self.esp.remove(id);
                }
            }
            RxCmd::Report => {
                let sas = self
                    .handles
                    .iter()
                    .filter_map(|(h, id)| Some((*h, self.esp.stats(*id)?)))
                    .collect();
                let mut stats = self.stats;
                stats.unattributed = self.esp.unattributed_drops();
                let _ = self.up.send(Up::Report { sas, stats });
            }
            RxCmd::Stop => {}
        }
    }

    /// Up to `RX_ROUNDS` × `RX_BUFS` datagram trains from socket `i`.
    fn on_udp(&mut self, i: usize) {
        for _ in 0..RX_ROUNDS {
            let s = &self.socks[i];
            let mut chunks = self.rbuf.chunks_mut(RX_BUF);
            let mut iovs: [IoSliceMut<'_>; RX_BUFS] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            let r = s.sock.try_io(Interest::READABLE, |sock| {
                s.state.recv(sock.into(), &mut iovs, &mut self.meta)
            });
            let n = match r {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from earlier sends surface here; they are not fatal.
                Err(e) => {
                    tracing::debug!(error = %e, local = %s.local, "UDP receive error");
                    continue;
                }
            };
            let local = s.local;
            let now = Instant::now();
            for m in 0..n {
                let meta = self.meta[m];
                let stride = if meta.stride == 0 {
                    meta.len
                } else {
                    meta.stride
                };
                let base = m * RX_BUF;
                let mut at = 0;
                while at < meta.len {
                    let end = (at + stride).min(meta.len);
                    self.on_datagram(now, base + at..base + end, local, meta.addr);
                    at = end;
                }
            }
            self.flush_tun();
            if n < RX_BUFS {
                break;
            }
        }
        self.flush_tun();
    }

    fn on_datagram(
        &mut self,
        now: Instant,
        range: std::ops::Range<usize>,
        local: SocketAddr,
        from: SocketAddr,
    ) {
        self.stats.udp_rx += 1;
        if self.gro.is_full() {
            self.flush_tun();
        }
        let d = &mut self.rbuf[range];
        match classify_udp_4500(d) {
            UdpPayload::Esp(_) => {}
            UdpPayload::Ike(_) => {
                self.stats.ike_rx += 1;
                let _ = self.up.send(Up::Ike {
                    local,
                    remote: from,
                    payload: d.to_vec(),
                });
                return;
            }
            UdpPayload::NatKeepalive => {
                self.stats.keepalive += 1;
                return;
            }
            _ => {
                self.stats.invalid += 1;
                return;
            }
        }
        match self.esp.decapsulate(now, d) {
            // Room was made above.
            Ok(inner) => {
                if self.gro.push(&d[inner.range]) {
                    self.stats.tun_tx += 1;
                } else {
                    self.stats.tun_tx_err += 1;
                }
            }
            Err(reason) => {
                self.stats.esp_drop += 1;
                tracing::debug!(%reason, %from, "ESP packet dropped");
            }
        }
    }

    /// Writes the batch to TUN: one write per frame, where (with offload) a frame is a run
    /// of TCP or UDP segments of one flow.
    fn flush_tun(&mut self) {
        if self.gro.is_empty() {
            return;
        }
        let dev = self.tun.get_ref();
        let stats = &mut self.stats;
        self.gro.flush(|frame| match dev.send(frame) {
            Ok(_) => {}
            Err(e) => {
                stats.tun_tx_err += 1;
                tracing::debug!(error = %e, "TUN write failed");
            }
        });
    }
}

/// Resolves with the index of a readable socket, round-robin from `start`.
async fn readable_any(socks: &[Sock], start: usize) -> io::Result<usize> {
    if socks.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        let n = socks.len();
        for k in 0..n {
            let i = (start + k) % n;
            // The guard is dropped without clearing the readiness: the reads clear it
            // when they meet `WouldBlock`.
            if let std::task::Poll::Ready(r) = socks[i].sock.poll_read_ready(cx) {
                return std::task::Poll::Ready(r.map(|_guard| i));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

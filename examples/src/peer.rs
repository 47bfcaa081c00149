//! The `ipsec-peer` run loop: the main tokio `current_thread` task owns the control plane,
//! the clock, the TUN reads and the outbound ESP engine; the inbound half (UDP 4500 → ESP
//! decapsulation → TUN writes, with its own engine holding the inbound SAs) runs on a
//! second thread, see [`crate::datapath`].
//!
//! ```text
//!   loop {
//!       select! {
//!           SIGINT | SIGTERM            => break (then close IKE SAs, drain, final stats)
//!           TUN readable                => on_tun: up to BATCH reads. A lone packet is
//!                                            read into the next slot, encrypted there and
//!                                            queued; the queue goes out as UDP GSO trains
//!                                            (flush_pending). With offload a read may be a
//!                                            TCP/UDP super-segment: packet_selector →
//!                                            Spd::lookup once → split into segments laid
//!                                            out at their ESP size → esp.encapsulate each
//!                                            in place → one UDP GSO sendmsg per ≤64 KiB
//!           a port-500 socket readable  => ike.handle
//!           from the inbound loop       => IKE on 4500 → ike.handle; ESP events; reports
//!           sleep_until(min(esp.poll_timeout, ike.poll_timeout)) => handle_timeout on both
//!           stats tick                  => one line per SA (inbound ones via a report)
//!       }
//!       drain(): ike.poll_event → install/remove SAs (inbound ones in the inbound
//!                engine, first) + SPD + keylog; ike.poll_transmit → send;
//!                esp.poll_event → ike.handle_esp_event; repeat
//!   }
//! ```
//!
//! The packet path allocates nothing: the TUN, UDP and IKE buffers are allocated once and
//! reused; sends are non-blocking calls on slices of them (a full socket buffer drops the
//! packet and counts it, as a router would). Outbound, a lone packet is encrypted and sent
//! where it was read; the only copy is the split of a super-segment into its segments (each
//! lands where it is encrypted and sent from). Inbound, the only copy moves each decrypted
//! packet into the TUN write batch, where it joins the run of its flow ([`crate::gro`]).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::Context;
use ipsec_core::sa::{Direction, Lifetime, UdpEncap};
use ipsec_core::{EspSaParams, EspTransform, Spi};
use quinn_udp::{Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tun_rs::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN, VirtioNetHdr};

use crate::config::{Config, ManualDirection, ManualSa};
use crate::datapath::{self, F_NEEDS_CSUM, GSO_NONE, GSO_UDP_L4, RxCmd, RxHandle, RxStats, Up};
use crate::esp_glue::{Esp, EspEvent, HEADROOM, Provider, SaId, SaStats, TAILROOM};
use crate::ike_glue::{ControlPlane, Datagram, IkeEvent};
use crate::keylog::KeyLog;
use crate::net::{self, UdpSock};
use crate::spd::{OutboundPolicy, Spd, packet_selector};
use crate::tun::{GSO_MAX_BYTES, TUN_INTEREST, TunDevice};

/// Packets handled per readiness event before other sources get a turn.
pub const BATCH: usize = 64;
/// Largest IP packet.
const MAX_PACKET: usize = 65535;

/// Most lone packets sent by one `sendmsg` (the kernel's UDP_MAX_SEGMENTS is 64 or 128).
const MAX_IOV: usize = 64;

/// Run-time options (from the command line).
#[derive(Debug)]
pub struct Options {
    /// Period of the statistics lines; `None` disables them.
    pub stats_interval: Option<Duration>,
    /// TUN offload (virtio-net header, TSO/USO reads, coalesced writes).
    pub offload: bool,
    /// Threads of the packet path: 1 (both directions on the main thread) or 2 (the
    /// inbound direction on its own thread).
    pub threads: usize,
    /// The crypto provider of the ESP engines.
    pub provider: Provider,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            stats_interval: None,
            offload: true,
            threads: 2,
            provider: Provider::default(),
        }
    }
}

/// The file descriptors.
pub struct Io {
    /// The TUN device (shared with the inbound loop, which only writes to it).
    pub tun: Arc<TunDevice>,
    /// Whether the TUN device was opened with offload.
    pub offload: bool,
    /// Its MTU (no segment of a super-segment is larger).
    pub mtu: u16,
    /// The UDP sockets.
    pub socks: Vec<UdpSock>,
    /// quinn-udp state (UDP GSO) of each NAT-T socket.
    pub udp: Vec<Option<UdpSocketState>>,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("socks", &self.socks)
            .finish_non_exhaustive()
    }
}

/// Where an outbound SA's packets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutRoute {
    /// The SA.
    pub sa: SaId,
    /// Index into [`Io::socks`].
    pub sock: usize,
    /// The peer's UDP-encapsulation address.
    pub dst: SocketAddr,
}

/// Where an installed SA lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaKey {
    /// In the outbound engine (main thread).
    Out(SaId),
    /// In the inbound engine, under this handle.
    In(u64),
}

#[derive(Debug)]
struct InstalledSa {
    id: SaKey,
    spi: Spi,
    dir: Direction,
    label: String,
    last: SaStats,
}

/// Counters of the I/O around the engines.
#[derive(Debug, Default, Clone, Copy)]
pub struct IoStats {
    /// Packets read from TUN.
    pub tun_rx: u64,
    /// Packets written to TUN.
    pub tun_tx: u64,
    /// TUN writes that failed.
    pub tun_tx_err: u64,
    /// Datagrams received.
    pub udp_rx: u64,
    /// Datagrams sent.
    pub udp_tx: u64,
    /// Sends that failed (full socket buffer, unreachable).
    pub udp_tx_err: u64,
    /// TUN packets that matched no outbound policy.
    pub no_policy: u64,
    /// TUN packets that are not IPv4/IPv6.
    pub not_ip: u64,
    /// Encapsulation refusals.
    pub encap_err: u64,
    /// ESP packets dropped by the engine.
    pub esp_drop: u64,
    /// NAT keepalives received.
    pub keepalive: u64,
    /// IKE datagrams received.
    pub ike_rx: u64,
    /// IKE datagrams sent.
    pub ike_tx: u64,
    /// UDP-4500 payloads that are neither ESP, IKE nor keepalive.
    pub invalid: u64,
}

/// The run-loop state (everything but the file descriptors).
pub struct Peer<C: ControlPlane> {
    /// The outbound engine.
    esp: Esp,
    ike: C,
    spd: Spd<OutRoute>,
    sas: Vec<InstalledSa>,
    keylog: KeyLog,
    /// I/O counters.
    pub stats: IoStats,
    /// TUN reads: `BATCH` slots of `max_slot` octets (room for 64 KiB after the last).
    /// Read `k` starts at `k * max_slot + HEADROOM` (the virtio-net header just before), so
    /// that a lone packet is encrypted where it was read and sent from there.
    tun_buf: Vec<u8>,
    /// Lone packets encrypted in `tun_buf` and not sent yet: route and wire range.
    pending: Vec<(OutRoute, std::ops::Range<usize>)>,
    /// The segments of a super-segment, `stride` apart, stride = their ESP size.
    seg_buf: Vec<u8>,
    seg_sizes: Vec<usize>,
    seg_wire: Vec<(usize, usize)>,
    /// Largest segment slot.
    max_slot: usize,
    udp_buf: Vec<u8>,
    ike_buf: Vec<u8>,
    next_sock: usize,
    rx_cmd: mpsc::UnboundedSender<RxCmd>,
    rx_up: mpsc::UnboundedReceiver<Up>,
    rx: Option<RxHandle>,
    next_handle: u64,
    /// Sockets read by the main loop (plain IKE).
    ctl_socks: Vec<usize>,
    last_rx: RxStats,
}

impl<C: ControlPlane> std::fmt::Debug for Peer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("sas", &self.sas.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Sets up the TUN device, routes and sockets for `config`; must run inside the runtime.
pub fn open_io(config: &Config, opts: &Options) -> anyhow::Result<Io> {
    let tun = crate::tun::open(&config.tun, opts.offload)?;
    tracing::info!(
        dev = %config.tun.name,
        mtu = config.tun.mtu,
        offload = opts.offload,
        addresses = ?config.tun.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "TUN device up"
    );
    crate::tun::add_routes(
        &config.tun.name,
        &config.routed_selectors(),
        &config.tun.addresses,
    )?;
    let mut socks = Vec::new();
    let mut udp = Vec::new();
    for (addr, natt) in net::plan(config) {
        let s = net::bind(addr, natt)?;
        let state = if natt {
            Some(UdpSocketState::new((&s.sock).into()).context("UDP socket options")?)
        } else {
            None
        };
        tracing::info!(
            local = %addr,
            natt,
            gso_segments = state.as_ref().map_or(0, |s| s.max_gso_segments()),
            "UDP socket bound"
        );
        socks.push(s);
        udp.push(state);
    }
    Ok(Io {
        tun: Arc::new(tun),
        offload: opts.offload,
        mtu: config.tun.mtu,
        socks,
        udp,
    })
}

/// Builds the [`EspSaParams`] of a manual SA.
pub fn manual_params(m: &ManualSa) -> EspSaParams {
    let key = m.key.expose();
    let transform = EspTransform::aead_from_keymat(m.alg, key)
        .expect("key length checked when the configuration was parsed");
    EspSaParams {
        spi: m.spi,
        direction: match m.direction {
            ManualDirection::In => Direction::Inbound,
            ManualDirection::Out => Direction::Outbound,
        },
        mode: m.mode,
        transform,
        esn: m.esn,
        replay_window: m.replay_window,
        lifetime: Lifetime::default(),
        encap: Some(UdpEncap {
            local_port: m.local_port,
            remote_port: m.remote_port,
        }),
        local_addr: m.local_addr,
        remote_addr: m.remote_addr,
        ts_local: m.local_ts.clone(),
        ts_remote: m.remote_ts.clone(),
    }
}

impl<C: ControlPlane> Peer<C> {
    /// A peer with no SAs yet; starts the inbound loop (own thread with `threads ≥ 2`).
    pub fn new(ike: C, keylog: KeyLog, io: &Io, opts: &Options) -> anyhow::Result<Self> {
        let (rx_cmd, cmds) = mpsc::unbounded_channel();
        let (up, rx_up) = mpsc::unbounded_channel();
        let mut rx_socks = Vec::new();
        let mut ctl_socks = Vec::new();
        for (i, s) in io.socks.iter().enumerate() {
            if s.natt {
                rx_socks.push(datapath::RxSocket {
                    sock: net::clone_std(s).context("duplicating a UDP socket")?,
                    local: s.local,
                });
            } else {
                ctl_socks.push(i);
            }
        }
        let rx = datapath::spawn(
            io.tun.clone(),
            rx_socks,
            opts.provider,
            cmds,
            up,
            opts.threads >= 2,
        )
        .context("starting the inbound loop")?;
        let max_slot = HEADROOM + usize::from(io.mtu) + TAILROOM;
        Ok(Self {
            esp: Esp::with_provider(opts.provider),
            ike,
            spd: Spd::default(),
            sas: Vec::new(),
            keylog,
            stats: IoStats::default(),
            tun_buf: vec![0; max_slot * (BATCH - 1) + HEADROOM + MAX_PACKET + TAILROOM],
            pending: Vec::with_capacity(BATCH),
            seg_buf: vec![0; max_slot * IDEAL_BATCH_SIZE],
            seg_sizes: vec![0; IDEAL_BATCH_SIZE],
            seg_wire: vec![(0, 0); IDEAL_BATCH_SIZE],
            max_slot,
            udp_buf: vec![0; MAX_PACKET],
            ike_buf: Vec::with_capacity(MAX_PACKET),
            next_sock: 0,
            rx_cmd,
            rx_up,
            rx: Some(rx),
            next_handle: 1,
            ctl_socks,
            last_rx: RxStats::default(),
        })
    }

    /// Installs one SA into the ESP engine of its direction, the key log and (outbound)
    /// the policy table.
    pub fn install_sa(
        &mut self,
        io: &Io,
        now: Instant,
        params: EspSaParams,
        label: &str,
    ) -> anyhow::Result<()> {
        self.keylog.log_esp_sa(&params);
        let (spi, dir) = (params.spi, params.direction);
        let id = if dir == Direction::Outbound {
            let encap = params
                .encap
                .context("outbound SA without UDP encapsulation (raw ESP is not supported)")?;
            let local = SocketAddr::new(params.local_addr, encap.local_port);
            let sock = net::select(&io.socks, local)
                .with_context(|| format!("no UDP socket bound to {local}"))?;
            let dst = SocketAddr::new(params.remote_addr, encap.remote_port);
            let (ts_local, ts_remote) = (params.ts_local.clone(), params.ts_remote.clone());
            let id = self
                .esp
                .install(now, params)
                .with_context(|| format!("installing SA {label} (SPI {spi})"))?;
            self.spd.insert(OutboundPolicy {
                local: ts_local,
                remote: ts_remote,
                sa: OutRoute { sa: id, sock, dst },
            });
            SaKey::Out(id)
        } else {
            let handle = self.next_handle;
            self.next_handle += 1;
            self.rx_cmd
                .send(RxCmd::Install {
                    handle,
                    params: Box::new(params),
                })
                .ok()
                .context("the inbound loop has stopped")?;
            SaKey::In(handle)
        };
        tracing::info!(sa = label, spi = %spi, dir = ?dir, "ESP SA installed");
        self.sas.push(InstalledSa {
            id,
            spi,
            dir,
            label: label.to_string(),
            last: SaStats::default(),
        });
        Ok(())
    }

    fn remove_sa(&mut self, id: SaKey) {
        match id {
            SaKey::Out(sa) => {
                self.spd.remove_where(|r| r.sa == sa);
                self.esp.remove(sa);
            }
            SaKey::In(h) => {
                let _ = self.rx_cmd.send(RxCmd::Remove(h));
            }
        }
        if let Some(i) = self.sas.iter().position(|s| s.id == id) {
            let s = self.sas.swap_remove(i);
            tracing::info!(sa = %s.label, spi = %s.spi, dir = ?s.dir, "ESP SA removed");
        }
    }

    /// Installs the `[[manual_sa]]` entries.
    pub fn install_manual(&mut self, io: &Io, now: Instant, config: &Config) -> anyhow::Result<()> {
        for (i, m) in config.manual_sa.iter().enumerate() {
            let label = format!("manual_sa[{i}]");
            self.install_sa(io, now, manual_params(m), &label)?;
        }
        Ok(())
    }

    /// Runs until SIGINT or SIGTERM.
    pub async fn run(mut self, io: Io, config: &Config, opts: &Options) -> anyhow::Result<()> {
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let period = opts.stats_interval.unwrap_or(Duration::from_secs(86400));
        let mut stats_tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.ike.start(Instant::now(), config);
        self.drain(&io, Instant::now());
        tracing::info!(
            sas = self.sas.len(),
            threads = opts.threads,
            offload = io.offload,
            provider = ?opts.provider,
            "running"
        );
        loop {
            let deadline = self.deadline();
            tokio::select! {
                _ = sigint.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                r = io.tun.ready(TUN_INTEREST) => {
                    if r.context("TUN device")?.ready().is_error() {
                        anyhow::bail!("the TUN device reports an error (was it deleted?)");
                    }
                    self.on_tun(&io)?;
                }
                r = readable_any(&io.socks, &self.ctl_socks, self.next_sock) => {
                    let i = r.context("UDP socket")?;
                    let _ = i;
                    self.next_sock = self.next_sock.wrapping_add(1);
                    self.on_udp(&io, i)?;
                }
                up = self.rx_up.recv() => match up {
                    Some(up) => self.on_up(up, period),
                    None => anyhow::bail!("the inbound loop stopped"),
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    self.on_timeout(Instant::now());
                }
                _ = stats_tick.tick(), if opts.stats_interval.is_some() => {
                    self.log_stats();
                }
            }
            self.drain(&io, Instant::now());
        }
        // Later: this sends the IKE Deletes.
        self.ike.close_all(Instant::now());
        self.drain(&io, Instant::now());
        // The final statistics: wait for the inbound loop's report, then stop it.
        let _ = self.rx_cmd.send(RxCmd::Report);
        let wait = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                up = self.rx_up.recv() => match up {
                    Some(Up::Report { sas, stats }) => {
                        self.on_report(&sas, stats, period);
                        break;
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = &mut wait => {
                    tracing::warn!("no final report from the inbound loop");
                    break;
                }
            }
        }
        let _ = self.rx_cmd.send(RxCmd::Stop);
        if let Some(rx) = self.rx.take() {
            rx.join().await;
        }
        Ok(())
    }

    fn deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        [self.esp.poll_timeout(), self.ike.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(far)
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.esp.poll_timeout().is_some_and(|t| t <= now) {
            self.esp.handle_timeout(now);
        }
        if self.ike.poll_timeout().is_some_and(|t| t <= now) {
            self.ike.handle_timeout(now);
        }
    }

    fn on_up(&mut self, up: Up, period: Duration) {
        let now = Instant::now();
        match up {
            Up::Ike {
                local,
                remote,
                payload,
            } => {
                self.stats.ike_rx += 1;
                self.ike.handle(
                    now,
                    Datagram {
                        local,
                        remote,
                        payload: &payload,
                    },
                );
            }
            Up::Esp(ev) => self.on_esp_event(now, ev),
            Up::Report { sas, stats } => self.on_report(&sas, stats, period),
            Up::InstallFailed(h) => {
                self.sas.retain(|s| s.id != SaKey::In(h));
            }
        }
    }

    /// Inner packets from TUN: one read is a packet or (offload) a super-segment. Lone
    /// packets are read into consecutive slots, encrypted in place and sent together
    /// ([`Peer::flush_pending`]); a super-segment first sends what is pending.
    fn on_tun(&mut self, io: &Io) -> anyhow::Result<()> {
        let now = Instant::now();
        let vnet = if io.offload { VIRTIO_NET_HDR_LEN } else { 0 };
        let r = self.read_tun(io, now, vnet);
        self.flush_pending(io);
        r
    }

    fn read_tun(&mut self, io: &Io, now: Instant, vnet: usize) -> anyhow::Result<()> {
        for _ in 0..BATCH {
            let slot = self.pending.len() * self.max_slot;
            let (start, head) = (slot + HEADROOM - vnet, slot + HEADROOM);
            let buf = &mut self.tun_buf[start..head + MAX_PACKET];
            let n = match io.tun.try_io(Interest::READABLE, |d| d.recv(buf)) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading the TUN device"),
            };
            self.stats.tun_rx += 1;
            if n <= vnet {
                self.stats.not_ip += 1;
                continue;
            }
            let end = start + n;
            if vnet != 0 {
                let hdr = match VirtioNetHdr::decode(&self.tun_buf[start..head]) {
                    Ok(h) => h,
                    Err(_) => {
                        self.stats.not_ip += 1;
                        continue;
                    }
                };
                if hdr.gso_type != GSO_NONE {
                    self.flush_pending(io);
                    self.send_super(io, now, hdr, head..end);
                    continue;
                }
                if hdr.flags & F_NEEDS_CSUM != 0
                    && !datapath::finish_checksum(
                        &mut self.tun_buf[head..end],
                        hdr.csum_start,
                        hdr.csum_offset,
                    )
                {
                    self.stats.not_ip += 1;
                    continue;
                }
            }
            if self.encapsulate_one(now, slot, head..end) {
                self.flush_pending(io);
            }
        }
        Ok(())
    }

    /// One inner packet at `tun_buf[payload]`, in the slot at `slot`: encapsulate in place
    /// and queue it for [`Peer::flush_pending`]. True if it outgrew its slot (a packet
    /// above the MTU): the next read would overwrite it, so send first.
    fn encapsulate_one(
        &mut self,
        now: Instant,
        slot: usize,
        payload: std::ops::Range<usize>,
    ) -> bool {
        let Some(route) = self.route(now, payload.clone()) else {
            return false;
        };
        // A packet above the MTU (only the last slot has room for one) takes the rest.
        let room = if payload.end + TAILROOM <= slot + self.max_slot {
            slot + self.max_slot
        } else {
            self.tun_buf.len()
        };
        let local = payload.start - slot..payload.end - slot;
        match self
            .esp
            .encapsulate(now, route.sa, &mut self.tun_buf[slot..room], local)
        {
            Ok(wire) => self
                .pending
                .push((route, slot + wire.start..slot + wire.end)),
            Err(e) => {
                self.stats.encap_err += 1;
                tracing::debug!(error = %e, "encapsulation refused");
            }
        }
        room > slot + self.max_slot
    }

    /// Sends the queued lone packets: consecutive ones to the same destination and of the
    /// same size (the last of a run may be shorter) go out in one `sendmsg` with UDP GSO,
    /// straight from their slots (an iovec each), the rest one by one.
    fn flush_pending(&mut self, io: &Io) {
        let mut i = 0;
        while i < self.pending.len() {
            let (route, first) = self.pending[i].clone();
            let size = first.len();
            let sock = &io.socks[route.sock];
            let max = io.udp[route.sock]
                .as_ref()
                .map_or(1, |g| g.max_gso_segments())
                .min(GSO_MAX_BYTES / size.max(1))
                .min(MAX_IOV);
            let mut k = 1;
            while k < max
                && let Some((r, w)) = self.pending.get(i + k)
                && r.sock == route.sock
                && r.dst == route.dst
                && w.len() <= size
            {
                k += 1;
                if w.len() < size {
                    break;
                }
            }
            let sent = if k == 1 {
                sock.sock
                    .send_to(&self.tun_buf[first], route.dst)
                    .map(|_| ())
            } else {
                let iov: [std::io::IoSlice<'_>; MAX_IOV] = std::array::from_fn(|j| {
                    std::io::IoSlice::new(match self.pending.get(i + j) {
                        Some((_, w)) if j < k => &self.tun_buf[w.clone()],
                        _ => &[],
                    })
                });
                net::send_gso(&sock.sock, route.dst, &iov[..k], size).or_else(|e| {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        return Err(e);
                    }
                    // A path without UDP segmentation (EIO, EINVAL): one by one.
                    tracing::debug!(error = %e, "UDP GSO send refused; sending one by one");
                    iov[..k]
                        .iter()
                        .try_for_each(|b| sock.sock.send_to(b, route.dst).map(|_| ()))
                })
            };
            match sent {
                Ok(()) => self.stats.udp_tx += k as u64,
                Err(e) => {
                    self.stats.udp_tx_err += k as u64;
                    tracing::debug!(error = %e, dst = %route.dst, "ESP send failed");
                }
            }
            i += k;
        }
        self.pending.clear();
    }

    /// The SA for the packet at `tun_buf[pkt]`, or `None` (counted, IKE asked to acquire).
    fn route(&mut self, now: Instant, pkt: std::ops::Range<usize>) -> Option<OutRoute> {
        let Some(sel) = packet_selector(&self.tun_buf[pkt]) else {
            self.stats.not_ip += 1;
            return None;
        };
        match self.spd.lookup(&sel).copied() {
            Some(r) => Some(r),
            None => {
                self.stats.no_policy += 1;
                tracing::trace!(src = %sel.src, dst = %sel.dst, proto = sel.proto, "no policy");
                self.ike.acquire(now, &sel);
                None
            }
        }
    }

    /// A TCP or UDP super-segment at `tun_buf[pkt]`: one policy lookup, split into
    /// segments placed one ESP packet apart, encapsulate each in place, send the train
    /// with UDP GSO.
    fn send_super(
        &mut self,
        io: &Io,
        now: Instant,
        mut hdr: VirtioNetHdr,
        pkt: std::ops::Range<usize>,
    ) {
        let len = pkt.len();
        let is_v6 = self.tun_buf[pkt.start] >> 4 == 6;
        // The kernel's hdr_len is not to be trusted (forwarded packets): recompute it.
        let cs = usize::from(hdr.csum_start);
        if hdr.gso_type == GSO_UDP_L4 {
            hdr.hdr_len = hdr.csum_start.saturating_add(8);
        } else {
            let off = hdr.csum_start as usize + 12;
            if len <= off {
                self.stats.not_ip += 1;
                return;
            }
            let th = usize::from(self.tun_buf[pkt.start + off] >> 4) * 4;
            if !(20..=60).contains(&th) {
                self.stats.not_ip += 1;
                return;
            }
            hdr.hdr_len = (cs + th) as u16;
        }
        if usize::from(hdr.hdr_len) > len || hdr.gso_size == 0 {
            self.stats.not_ip += 1;
            return;
        }
        let Some(route) = self.route(now, pkt.clone()) else {
            return;
        };
        let sa = route.sa;
        let full = usize::from(hdr.hdr_len) + usize::from(hdr.gso_size);
        let (Some(head), Some(over)) = (self.esp.headroom(sa), self.esp.overhead(sa, full)) else {
            self.stats.encap_err += 1;
            return;
        };
        let stride = full + over;
        if stride > self.max_slot {
            self.stats.encap_err += 1;
            return;
        }
        let n = {
            let mut chunks = self.seg_buf.chunks_mut(stride);
            let mut outs: [&mut [u8]; IDEAL_BATCH_SIZE] =
                std::array::from_fn(|_| chunks.next().unwrap_or_default());
            let n = match tun_rs::gso_split(
                &mut self.tun_buf[pkt],
                hdr,
                &mut outs,
                &mut self.seg_sizes,
                head,
                is_v6,
            ) {
                Ok(n) => n,
                Err(e) => {
                    self.stats.not_ip += 1;
                    tracing::debug!(error = %e, "TUN super-segment not split");
                    return;
                }
            };
            self.stats.tun_rx += n.saturating_sub(1) as u64;
            for (i, slot) in outs.iter_mut().enumerate().take(n) {
                let payload = head..head + self.seg_sizes[i];
                self.seg_wire[i] = match self.esp.encapsulate(now, sa, slot, payload) {
                    Ok(w) => (w.start, w.end),
                    Err(e) => {
                        self.stats.encap_err += 1;
                        tracing::debug!(error = %e, "encapsulation refused");
                        (0, 0)
                    }
                };
            }
            n
        };
        // Contiguous when every ESP packet fills its slot (all but the last).
        let contiguous = (0..n).all(|i| {
            let (a, b) = self.seg_wire[i];
            a == 0 && b > 0 && (i + 1 == n || b == stride)
        });
        let sock = &io.socks[route.sock];
        let gso = io.udp[route.sock].as_ref();
        let max_segs = gso
            .map_or(1, |g| g.max_gso_segments())
            .min(GSO_MAX_BYTES / stride);
        if contiguous && max_segs > 1 {
            let gso = gso.expect("max_segs > 1 implies a GSO state");
            let mut i = 0;
            while i < n {
                let k = max_segs.min(n - i);
                let end = (i + k - 1) * stride + self.seg_wire[i + k - 1].1;
                let t = Transmit {
                    destination: route.dst,
                    ecn: None,
                    contents: &self.seg_buf[i * stride..end],
                    segment_size: (k > 1).then_some(stride),
                    src_ip: None,
                };
                match gso.try_send((&*sock.sock).into(), &t) {
                    Ok(()) => self.stats.udp_tx += k as u64,
                    Err(e) => {
                        self.stats.udp_tx_err += k as u64;
                        tracing::debug!(error = %e, dst = %route.dst, "ESP send failed");
                    }
                }
                i += k;
            }
        } else {
            for i in 0..n {
                let (a, b) = self.seg_wire[i];
                if b == 0 {
                    continue;
                }
                let at = i * stride;
                match sock.sock.send_to(&self.seg_buf[at + a..at + b], route.dst) {
                    Ok(_) => self.stats.udp_tx += 1,
                    Err(e) => {
                        self.stats.udp_tx_err += 1;
                        tracing::debug!(error = %e, dst = %route.dst, "ESP send failed");
                    }
                }
            }
        }
    }

    /// Datagrams from a plain IKE socket (the NAT-T ones are read by the inbound loop).
    fn on_udp(&mut self, io: &Io, i: usize) -> anyhow::Result<()> {
        let now = Instant::now();
        let s = &io.socks[i];
        for _ in 0..BATCH {
            let Some(reader) = s.reader.as_ref() else {
                return Ok(());
            };
            let buf = &mut self.udp_buf;
            let (n, from) = match reader.try_io(Interest::READABLE, |sock| sock.recv_from(buf)) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from earlier sends surface here; they are not fatal.
                Err(e) => {
                    tracing::debug!(error = %e, local = %s.local, "UDP receive error");
                    continue;
                }
            };
            self.stats.udp_rx += 1;
            self.stats.ike_rx += 1;
            let d = Datagram {
                local: s.local,
                remote: from,
                payload: &self.udp_buf[..n],
            };
            self.ike.handle(now, d);
        }
        Ok(())
    }

    /// Moves everything the engines produced: IKE events (installing keys) before IKE
    /// transmits, then ESP events back into IKE; repeats while anything moved.
    pub fn drain(&mut self, io: &Io, now: Instant) {
        for _ in 0..16 {
            let mut moved = false;
            while let Some(ev) = self.ike.poll_event() {
                moved = true;
                self.on_ike_event(io, now, ev);
            }
            while let Some(t) = self.ike.poll_transmit(now, &mut self.ike_buf) {
                moved = true;
                let sent = net::select(&io.socks, t.local)
                    .map(|i| io.socks[i].sock.send_to(&self.ike_buf, t.remote));
                match sent {
                    Some(Ok(_)) => self.stats.ike_tx += 1,
                    Some(Err(e)) => tracing::warn!(error = %e, to = %t.remote, "IKE send failed"),
                    None => tracing::warn!(local = %t.local, "no socket for IKE transmit"),
                }
            }
            while let Some(ev) = self.esp.poll_event() {
                moved = true;
                self.on_esp_event(now, ev);
            }
            if !moved {
                break;
            }
        }
    }

    fn on_ike_event(&mut self, io: &Io, now: Instant, ev: IkeEvent) {
        match ev {
            IkeEvent::IkeSaEstablished { name, keys } => {
                tracing::info!(connection = %name, "IKE SA established");
                if let Some(k) = keys {
                    self.keylog.log_ike_sa(&k);
                }
            }
            IkeEvent::IkeSaRekeyed { name, keys } => {
                tracing::info!(connection = %name, "IKE SA rekeyed");
                if let Some(k) = keys {
                    self.keylog.log_ike_sa(&k);
                }
            }
            IkeEvent::ChildSaEstablished {
                name,
                inbound,
                outbound,
            } => {
                // Inbound first: the peer may use it as soon as it sees our response. After
                // a rekey we answered, it is already in (ChildSaInboundReady).
                let label_in = format!("{name}/in");
                let label_out = format!("{name}/out");
                let have_inbound = self
                    .sas
                    .iter()
                    .any(|s| s.dir == Direction::Inbound && s.spi == inbound.spi);
                if !have_inbound && let Err(e) = self.install_sa(io, now, *inbound, &label_in) {
                    tracing::error!(error = %format!("{e:#}"), "inbound SA not installed");
                }
                if let Err(e) = self.install_sa(io, now, *outbound, &label_out) {
                    tracing::error!(error = %format!("{e:#}"), "outbound SA not installed");
                }
            }
            IkeEvent::ChildSaInboundReady { name, inbound } => {
                if let Err(e) = self.install_sa(io, now, *inbound, &format!("{name}/in")) {
                    tracing::error!(error = %format!("{e:#}"), "inbound SA not installed");
                }
            }
            IkeEvent::ChildSaDeleted {
                inbound_spi,
                outbound_spi,
            } => {
                let ids: Vec<SaKey> = self
                    .sas
                    .iter()
                    .filter(|s| {
                        (s.dir == Direction::Inbound && Some(s.spi) == inbound_spi)
                            || (s.dir == Direction::Outbound && Some(s.spi) == outbound_spi)
                    })
                    .map(|s| s.id)
                    .collect();
                for id in ids {
                    self.remove_sa(id);
                }
            }
            IkeEvent::IkeSaClosed { name, reason } => {
                tracing::info!(connection = %name, %reason, "IKE SA closed");
            }
        }
    }

    fn on_esp_event(&mut self, now: Instant, ev: EspEvent) {
        tracing::info!(event = ?ev, "ESP event");
        self.ike.handle_esp_event(now, &ev);
    }

    /// Asks the inbound loop for its report; the statistics lines are logged when it
    /// arrives.
    pub fn log_stats(&mut self) {
        let _ = self.rx_cmd.send(RxCmd::Report);
    }

    /// Logs one line per SA plus one for the I/O counters, with rates over `period`.
    fn on_report(&mut self, rx_sas: &[(u64, SaStats)], rx: RxStats, period: Duration) {
        let secs = period.as_secs_f64().max(1e-3);
        for s in &mut self.sas {
            let st = match s.id {
                SaKey::Out(id) => self.esp.stats(id),
                SaKey::In(h) => rx_sas.iter().find(|(x, _)| *x == h).map(|(_, st)| *st),
            };
            let Some(st) = st else {
                continue;
            };
            let dp = st.packets - s.last.packets;
            let db = st.bytes - s.last.bytes;
            tracing::info!(
                sa = %s.label,
                spi = %s.spi,
                dir = ?s.dir,
                packets = st.packets,
                bytes = st.bytes,
                pps = (dp as f64 / secs).round(),
                mbit_s = format!("{:.2}", db as f64 * 8.0 / secs / 1e6),
                drops = st.drops.total(),
                encap_errors = st.encap_errors,
                last_seq = st.last_seq,
                "SA stats"
            );
            s.last = st;
        }
        self.last_rx = rx;
        let t = self.stats;
        tracing::info!(
            tun_rx = t.tun_rx,
            tun_tx = rx.tun_tx,
            udp_rx = t.udp_rx + rx.udp_rx,
            udp_tx = t.udp_tx,
            udp_tx_err = t.udp_tx_err,
            tun_tx_err = rx.tun_tx_err,
            no_policy = t.no_policy,
            not_ip = t.not_ip,
            encap_err = t.encap_err,
            esp_drop = rx.esp_drop,
            esp_unattributed = rx.unattributed,
            ike_rx = t.ike_rx,
            ike_tx = t.ike_tx,
            keepalive = rx.keepalive,
            invalid = rx.invalid,
            "I/O stats"
        );
    }
}

/// Resolves with the index of a readable socket among `which`, polling round-robin from
/// `start` so a busy socket cannot starve the others.
async fn readable_any(socks: &[UdpSock], which: &[usize], start: usize) -> io::Result<usize> {
    if which.is_empty() {
        return std::future::pending().await;
    }
    poll_fn(|cx| {
        let n = which.len();
        for k in 0..n {
            let i = which[(start + k) % n];
            let Some(reader) = socks[i].reader.as_ref() else {
                continue;
            };
            // The guard goes without clearing the readiness: the reads clear it when they
            // meet `WouldBlock`.
            if let Poll::Ready(r) = reader.poll_read_ready(cx) {
                return Poll::Ready(r.map(|_guard| i));
            }
        }
        Poll::Pending
    })
    .await
}

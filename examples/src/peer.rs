//! The `ipsec-peer` run loop: one tokio `current_thread` task owning the TUN device, the UDP
//! sockets, the clock, the ESP engine and the control plane.
//!
//! ```text
//!   loop {
//!       select! {
//!           SIGINT | SIGTERM            => break (then close IKE SAs, drain, final stats)
//!           TUN readable                => on_tun: up to BATCH packets:
//!                                            packet_selector → Spd::lookup → esp.encapsulate
//!                                            in place (HEADROOM before the packet) → UDP send
//!           a UDP socket readable       => on_udp: up to BATCH datagrams:
//!                                            port 500: ike.handle
//!                                            port 4500: classify_udp_4500 →
//!                                              ESP  → esp.decapsulate in place → TUN write
//!                                              IKE  → ike.handle (marker stripped)
//!                                              keepalive → count
//!           sleep_until(min(esp.poll_timeout, ike.poll_timeout)) => handle_timeout on both
//!           stats tick                  => one line per SA
//!       }
//!       drain(): ike.poll_event → install/remove SAs + SPD + keylog (inbound first);
//!                ike.poll_transmit → send; esp.poll_event → ike.handle_esp_event; repeat
//!   }
//! ```
//!
//! The packet path allocates nothing: the TUN, UDP and IKE buffers are allocated once and
//! reused; sends use `try_send*` on slices of them (a full socket buffer drops the packet and
//! counts it, as a router would).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::Context;
use ipsec_core::natt::{UdpPayload, classify_udp_4500};
use ipsec_core::sa::{Direction, Lifetime, UdpEncap};
use ipsec_core::{EspSaParams, EspTransform, Spi};
use tokio::signal::unix::{SignalKind, signal};
use tun_rs::AsyncDevice;

use crate::config::{Config, ManualDirection, ManualSa};
use crate::esp_glue::{Esp, EspEvent, HEADROOM, SaId, SaStats, TAILROOM};
use crate::ike_glue::{ControlPlane, Datagram, IkeEvent};
use crate::keylog::KeyLog;
use crate::net::{self, UdpSock};
use crate::spd::{OutboundPolicy, Spd, packet_selector};

/// Packets handled per readiness event before other sources get a turn.
pub const BATCH: usize = 64;
/// Largest IP packet.
const MAX_PACKET: usize = 65535;

/// Run-time options (from the command line).
#[derive(Debug)]
pub struct Options {
    /// Period of the statistics lines; `None` disables them.
    pub stats_interval: Option<Duration>,
}

/// The file descriptors.
pub struct Io {
    /// The TUN device.
    pub tun: AsyncDevice,
    /// The UDP sockets.
    pub socks: Vec<UdpSock>,
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

#[derive(Debug)]
struct InstalledSa {
    id: SaId,
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
    esp: Esp,
    ike: C,
    spd: Spd<OutRoute>,
    sas: Vec<InstalledSa>,
    keylog: KeyLog,
    /// I/O counters.
    pub stats: IoStats,
    tun_buf: Vec<u8>,
    udp_buf: Vec<u8>,
    ike_buf: Vec<u8>,
    next_sock: usize,
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
pub fn open_io(config: &Config) -> anyhow::Result<Io> {
    let tun = crate::tun::open(&config.tun)?;
    tracing::info!(
        dev = %config.tun.name,
        mtu = config.tun.mtu,
        addresses = ?config.tun.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "TUN device up"
    );
    crate::tun::add_routes(
        &config.tun.name,
        &config.routed_selectors(),
        &config.tun.addresses,
    )?;
    let mut socks = Vec::new();
    for (addr, natt) in net::plan(config) {
        let s = net::bind(addr, natt)?;
        tracing::info!(local = %addr, natt, "UDP socket bound");
        socks.push(s);
    }
    Ok(Io { tun, socks })
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
    /// A peer with no SAs yet.
    pub fn new(ike: C, keylog: KeyLog) -> Self {
        Self {
            esp: Esp::new(),
            ike,
            spd: Spd::default(),
            sas: Vec::new(),
            keylog,
            stats: IoStats::default(),
            tun_buf: vec![0; HEADROOM + MAX_PACKET + TAILROOM],
            udp_buf: vec![0; MAX_PACKET],
            ike_buf: Vec::with_capacity(MAX_PACKET),
            next_sock: 0,
        }
    }

    /// Installs one SA into the ESP engine, the key log and (outbound) the policy table.
    pub fn install_sa(
        &mut self,
        io: &Io,
        now: Instant,
        params: EspSaParams,
        label: &str,
    ) -> anyhow::Result<SaId> {
        self.keylog.log_esp_sa(&params);
        let (spi, dir) = (params.spi, params.direction);
        let route = if dir == Direction::Outbound {
            let encap = params
                .encap
                .context("outbound SA without UDP encapsulation (raw ESP is not supported)")?;
            let local = SocketAddr::new(params.local_addr, encap.local_port);
            let sock = net::select(&io.socks, local)
                .with_context(|| format!("no UDP socket bound to {local}"))?;
            Some((
                SocketAddr::new(params.remote_addr, encap.remote_port),
                sock,
                params.ts_local.clone(),
                params.ts_remote.clone(),
            ))
        } else {
            None
        };
        let id = self
            .esp
            .install(now, params)
            .with_context(|| format!("installing SA {label} (SPI {spi})"))?;
        if let Some((dst, sock, local, remote)) = route {
            self.spd.insert(OutboundPolicy {
                local,
                remote,
                sa: OutRoute { sa: id, sock, dst },
            });
        }
        tracing::info!(sa = label, spi = %spi, dir = ?dir, "ESP SA installed");
        self.sas.push(InstalledSa {
            id,
            spi,
            dir,
            label: label.to_string(),
            last: SaStats::default(),
        });
        Ok(id)
    }

    /// Removes an SA from the engine and the policy table.
    pub fn remove_sa(&mut self, id: SaId) {
        self.spd.remove_where(|r| r.sa == id);
        self.esp.remove(id);
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
        tracing::info!(sas = self.sas.len(), "running");
        loop {
            let deadline = self.deadline();
            tokio::select! {
                _ = sigint.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                r = io.tun.readable() => {
                    r.context("TUN device")?;
                    self.on_tun(&io)?;
                }
                r = readable_any(&io.socks, self.next_sock) => {
                    let i = r.context("UDP socket")?;
                    self.next_sock = (i + 1) % io.socks.len().max(1);
                    self.on_udp(&io, i)?;
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    self.on_timeout(Instant::now());
                }
                _ = stats_tick.tick(), if opts.stats_interval.is_some() => {
                    self.log_stats(period);
                }
            }
            self.drain(&io, Instant::now());
        }
        // Later: this sends the IKE Deletes.
        self.ike.close_all(Instant::now());
        self.drain(&io, Instant::now());
        self.log_stats(period);
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

    /// Inner packets from TUN: select the SA, encapsulate in place, send.
    fn on_tun(&mut self, io: &Io) -> anyhow::Result<()> {
        let now = Instant::now();
        for _ in 0..BATCH {
            let n = match io
                .tun
                .try_recv(&mut self.tun_buf[HEADROOM..HEADROOM + MAX_PACKET])
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading the TUN device"),
            };
            self.stats.tun_rx += 1;
            let payload = HEADROOM..HEADROOM + n;
            let Some(sel) = packet_selector(&self.tun_buf[payload.clone()]) else {
                self.stats.not_ip += 1;
                continue;
            };
            let Some(route) = self.spd.lookup(&sel).copied() else {
                self.stats.no_policy += 1;
                tracing::trace!(src = %sel.src, dst = %sel.dst, proto = sel.proto, "no policy");
                self.ike.acquire(now, &sel);
                continue;
            };
            match self
                .esp
                .encapsulate(now, route.sa, &mut self.tun_buf, payload)
            {
                Ok(wire) => match io.socks[route.sock]
                    .sock
                    .try_send_to(&self.tun_buf[wire], route.dst)
                {
                    Ok(_) => self.stats.udp_tx += 1,
                    Err(e) => {
                        self.stats.udp_tx_err += 1;
                        tracing::debug!(error = %e, dst = %route.dst, "ESP send failed");
                    }
                },
                Err(e) => {
                    self.stats.encap_err += 1;
                    tracing::debug!(error = %e, "encapsulation refused");
                }
            }
        }
        Ok(())
    }

    /// Datagrams from socket `i`: IKE to the control plane, ESP to the engine then TUN.
    fn on_udp(&mut self, io: &Io, i: usize) -> anyhow::Result<()> {
        let now = Instant::now();
        let s = &io.socks[i];
        for _ in 0..BATCH {
            let (n, from) = match s.sock.try_recv_from(&mut self.udp_buf) {
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
            if !s.natt {
                self.stats.ike_rx += 1;
                let d = Datagram {
                    local: s.local,
                    remote: from,
                    payload: &self.udp_buf[..n],
                };
                self.ike.handle(now, d);
                continue;
            }
            // Decide first, so the classification's borrow ends before the in-place work.
            enum Kind {
                Esp,
                Ike,
                Keepalive,
                Invalid,
            }
            let kind = match classify_udp_4500(&self.udp_buf[..n]) {
                UdpPayload::Esp(_) => Kind::Esp,
                UdpPayload::Ike(_) => Kind::Ike,
                UdpPayload::NatKeepalive => Kind::Keepalive,
                _ => Kind::Invalid,
            };
            match kind {
                Kind::Esp => match self.esp.decapsulate(now, &mut self.udp_buf[..n]) {
                    Ok(inner) => match io.tun.try_send(&self.udp_buf[inner.range]) {
                        Ok(_) => self.stats.tun_tx += 1,
                        Err(e) => {
                            self.stats.tun_tx_err += 1;
                            tracing::debug!(error = %e, "TUN write failed");
                        }
                    },
                    Err(reason) => {
                        self.stats.esp_drop += 1;
                        tracing::debug!(%reason, from = %from, "ESP packet dropped");
                    }
                },
                Kind::Ike => {
                    self.stats.ike_rx += 1;
                    // The UDP payload as received, non-ESP marker included.
                    let d = Datagram {
                        local: s.local,
                        remote: from,
                        payload: &self.udp_buf[..n],
                    };
                    self.ike.handle(now, d);
                }
                Kind::Keepalive => self.stats.keepalive += 1,
                Kind::Invalid => self.stats.invalid += 1,
            }
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
                    .map(|i| io.socks[i].sock.try_send_to(&self.ike_buf, t.remote));
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
                let ids: Vec<SaId> = self
                    .sas
                    .iter()
                    .filter(|s| {
                        (s.dir == Direction::Inbound && s.spi == inbound_spi)
                            || (s.dir == Direction::Outbound && s.spi == outbound_spi)
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

    /// Logs one line per SA plus one for the I/O counters, with rates over `period`.
    pub fn log_stats(&mut self, period: Duration) {
        let secs = period.as_secs_f64().max(1e-3);
        for s in &mut self.sas {
            let Some(st) = self.esp.stats(s.id) else {
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
        let t = self.stats;
        tracing::info!(
            tun_rx = t.tun_rx,
            tun_tx = t.tun_tx,
            udp_rx = t.udp_rx,
            udp_tx = t.udp_tx,
            udp_tx_err = t.udp_tx_err,
            tun_tx_err = t.tun_tx_err,
            no_policy = t.no_policy,
            not_ip = t.not_ip,
            encap_err = t.encap_err,
            esp_drop = t.esp_drop,
            esp_unattributed = self.esp.unattributed_drops(),
            ike_rx = t.ike_rx,
            ike_tx = t.ike_tx,
            keepalive = t.keepalive,
            invalid = t.invalid,
            "I/O stats"
        );
    }
}

/// Resolves with the index of a readable socket, polling from `start` round-robin so a busy
/// socket cannot starve the others.
async fn readable_any(socks: &[UdpSock], start: usize) -> io::Result<usize> {
    if socks.is_empty() {
        return std::future::pending().await;
    }
    poll_fn(|cx| {
        let n = socks.len();
        for k in 0..n {
            let i = (start + k) % n;
            if let Poll::Ready(r) = socks[i].sock.poll_recv_ready(cx) {
                return Poll::Ready(r.map(|()| i));
            }
        }
        Poll::Pending
    })
    .await
}

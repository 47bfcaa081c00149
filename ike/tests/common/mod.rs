//! In-process test harness: two peers (IKE endpoint + ESP engine each) joined by a seeded
//! link model, in virtual time.
//!
//! `Pair::step` delivers what is due, or advances the clock to the next deadline; tests read
//! as short scripts: establish, send IPv6 packets through ESP, drop messages, close.
//!
//! ESP goes over a lossless path of the same link (same delay, same queue), so every ESP
//! drop is the ESP engine's (unknown SPI, replay, …) and never the link model's. The peer
//! sends on the newest fully installed Child SA of a name, like a kernel SPD pointing at
//! the newest SA. `Pair::traffic` makes both peers send a packet at a fixed interval.
//! `Pair::violations` records every inbound SA removed while the peer still selected it
//! for sending, and every install failure.
#![allow(dead_code)]

pub mod link;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use esp::{EspEngine, SaId};
use ike::proposal::{ProposalConfig, parse_proposals};
use ike::{
    ChildConfig, ChildSaId, Datagram, Endpoint, EndpointConfig, Event, IkeSaHandle, PeerConfig,
};
use ipsec_core::natt::{UdpPayload, classify_udp_4500};
use ipsec_core::{Mode, RustCrypto, SecretBytes, TrafficSelector};
pub use link::{InFlight, Link, LinkConfig};

pub const PSK: &[u8] = b"a-long-enough-pre-shared-key-0123";

pub fn ike_props(s: &str) -> Vec<ProposalConfig> {
    parse_proposals(ike::message::ProtocolId::IKE, s).unwrap()
}

pub fn esp_props(s: &str) -> Vec<ProposalConfig> {
    parse_proposals(ike::message::ProtocolId::ESP, s).unwrap()
}

pub fn ts(s: &str) -> TrafficSelector {
    s.parse().unwrap()
}

/// A connection from `local` to `remote` with one tunnel child `local_ts === remote_ts`.
pub fn peer_config(
    name: &str,
    local: IpAddr,
    remote: IpAddr,
    local_ts: &str,
    remote_ts: &str,
) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        local_id: ike::config::identity_from_ip(local),
        remote_id: Some(ike::config::identity_from_ip(remote)),
        psk: SecretBytes::from_slice(PSK),
        remote_addrs: vec![remote],
        ike_proposals: ike_props("aes256gcm16-prfsha256-x25519"),
        force_encap: false,
        dpd_delay: None,
        initial_contact: true,
        rekey_time: None,
        life_time: None,
        children: vec![ChildConfig::new(
            "child",
            vec![ts(local_ts)],
            vec![ts(remote_ts)],
            esp_props("aes256gcm16"),
        )],
    }
}

/// One host: IKE endpoint, ESP engine and what reached it.
pub struct Peer {
    pub name: &'static str,
    pub ike: Endpoint<RustCrypto>,
    pub esp: EspEngine<RustCrypto>,
    /// Address the host binds (port 500; 4500 is the same address).
    pub ip: IpAddr,
    pub config: Arc<PeerConfig>,
    pub events: Vec<Event>,
    /// Child SA → (inbound, outbound) ESP SAs installed.
    pub installed: HashMap<ChildSaId, (SaId, SaId)>,
    /// Rekey responder: Child SA → inbound ESP SA installed before the outbound one.
    pub inbound_only: HashMap<ChildSaId, SaId>,
    /// Inbound SAs of Child SAs replaced by a rekey, kept until their grace ends.
    pub retiring: HashMap<ChildSaId, SaId>,
    /// What each installed Child SA is.
    pub infos: HashMap<ChildSaId, ike::ChildSaInfo>,
    /// ESP packets handed to the engine for sending.
    pub esp_sent: u64,
    /// Child SA rekeys and IKE SA rekeys seen (ChildSaEstablished with `replaces`,
    /// IkeSaRekeyed).
    pub child_rekeys: u64,
    pub ike_rekeys: u64,
    /// Child SAs that a rekey replaced.
    pub replaced: std::collections::HashSet<ChildSaId>,
    /// Inner packets delivered by ESP.
    pub delivered: Vec<Vec<u8>>,
    pub esp_drops: Vec<esp::DropReason>,
    pub keepalives: u64,
}

impl Peer {
    pub fn new(
        name: &'static str,
        ip: IpAddr,
        seed: u64,
        config: PeerConfig,
        ep: EndpointConfig,
    ) -> Self {
        let provider = Arc::new(RustCrypto::with_seed(seed));
        let config = Arc::new(config);
        let mut ep = ep;
        ep.peers.push(config.clone());
        Self {
            name,
            ike: Endpoint::new(Arc::new(ep), provider.clone()),
            esp: EspEngine::new(provider),
            ip,
            config,
            events: Vec::new(),
            installed: HashMap::new(),
            inbound_only: HashMap::new(),
            retiring: HashMap::new(),
            infos: HashMap::new(),
            esp_sent: 0,
            child_rekeys: 0,
            ike_rekeys: 0,
            replaced: Default::default(),
            delivered: Vec::new(),
            esp_drops: Vec::new(),
            keepalives: 0,
        }
    }

    /// Name of the child installed first (the one `send_ip` uses).
    pub fn default_child_name(&self) -> Option<String> {
        self.installed
            .keys()
            .min_by_key(|c| c.0)
            .and_then(|c| self.infos.get(c))
            .map(|i| i.name.clone())
    }

    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, port)
    }

    pub fn established(&self) -> Vec<IkeSaHandle> {
        self.events
            .iter()
            .filter_map(|e| {
                if let Event::IkeSaEstablished { sa, .. } = e {
                    Some(*sa)
                } else {
                    None
                }
            })
            .collect()
    }

    /// The IKE SA in use now: the first established one, followed through its rekeys.
    pub fn current_ike(&self) -> IkeSaHandle {
        let mut h = self.established()[0];
        for e in &self.events {
            if let Event::IkeSaRekeyed { old, new } = e
                && *old == h
            {
                h = *new;
            }
        }
        h
    }

    pub fn children(&self) -> Vec<ike::ChildSaInfo> {
        self.events
            .iter()
            .filter_map(|e| {
                if let Event::ChildSaEstablished(c) = e {
                    Some((**c).clone())
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn closed(&self) -> Vec<ike::CloseReason> {
        self.events
            .iter()
            .filter_map(|e| {
                if let Event::IkeSaClosed { reason, .. } = e {
                    Some(reason.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn deleted_children(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::ChildSaDeleted { .. }))
            .count()
    }

    /// The Child SA this peer sends on for child `name`: the newest fully installed one.
    pub fn outbound_child(&self, name: &str) -> Option<ChildSaId> {
        self.installed
            .keys()
            .filter(|c| self.infos.get(c).is_some_and(|i| i.name == name))
            .max_by_key(|c| c.0)
            .copied()
    }

    /// The outbound SPI this peer uses for child `name`.
    pub fn outbound_spi(&self, name: &str) -> Option<ipsec_core::Spi> {
        self.outbound_child(name)
            .and_then(|c| self.infos.get(&c))
            .map(|i| i.outbound.spi)
    }

    /// Names of the installed children.
    pub fn child_names(&self) -> std::collections::BTreeSet<String> {
        self.installed
            .keys()
            .filter_map(|c| self.infos.get(c).map(|i| i.name.clone()))
            .collect()
    }

    /// ESP drops by reason (the reason's variant name).
    pub fn esp_drop_counts(&self) -> std::collections::BTreeMap<String, u64> {
        let mut m = std::collections::BTreeMap::new();
        for d in &self.esp_drops {
            let k = format!("{d:?}");
            let k = k.split('(').next().unwrap_or("").to_string();
            *m.entry(k).or_insert(0) += 1;
        }
        m
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.ike.poll_timeout(), self.esp.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// A NAT in front of peer A: rewrites A's source address/port to `public`.
#[derive(Debug, Clone, Copy)]
pub struct Nat {
    pub public: IpAddr,
    /// A's port 500 maps to this, A's 4500 to this + 1.
    pub base_port: u16,
}

/// Two peers and the link between them.
pub struct Pair {
    pub a: Peer,
    pub b: Peer,
    pub now: Instant,
    pub start: Instant,
    pub link: Link,
    pub seed: u64,
    pub nat: Option<Nat>,
    pub buf: Vec<u8>,
    /// Both peers send one ESP packet at this interval (when they have a Child SA).
    pub traffic: Option<Duration>,
    next_traffic: Option<Instant>,
    traffic_seq: u64,
    /// Broken invariants seen (see the module docs).
    pub violations: Vec<String>,
    /// IKE datagrams of this side are kept in `held` instead of going onto the link: the
    /// test inspects them and forwards (`Link::send`) or answers them itself.
    pub hold_ike: Option<Side>,
    pub held: Vec<InFlight>,
}

pub const A_IP: &str = "fd00::1";
pub const B_IP: &str = "fd00::2";

impl Pair {
    /// Two peers with the default configurations: A (initiator) fd01::/64 === fd02::/64 B.
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        let (a_ip, b_ip): (IpAddr, IpAddr) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
        let a = peer_config("a-to-b", a_ip, b_ip, "fd01::/64", "fd02::/64");
        let b = peer_config("b-from-a", b_ip, a_ip, "fd02::/64", "fd01::/64");
        Self::with_configs(
            seed,
            link,
            a,
            b,
            EndpointConfig::default(),
            EndpointConfig::default(),
        )
    }

    /// Two peers with the default configurations of [`Pair::new`], edited by `edit`.
    pub fn edited(
        seed: u64,
        link: LinkConfig,
        edit: impl FnOnce(&mut PeerConfig, &mut PeerConfig),
    ) -> Self {
        let (a_ip, b_ip): (IpAddr, IpAddr) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
        let mut a = peer_config("a-to-b", a_ip, b_ip, "fd01::/64", "fd02::/64");
        let mut b = peer_config("b-from-a", b_ip, a_ip, "fd02::/64", "fd01::/64");
        edit(&mut a, &mut b);
        Self::with_configs(
            seed,
            link,
            a,
            b,
            EndpointConfig::default(),
            EndpointConfig::default(),
        )
    }

    pub fn with_configs(
        seed: u64,
        link: LinkConfig,
        a: PeerConfig,
        b: PeerConfig,
        ep_a: EndpointConfig,
        ep_b: EndpointConfig,
    ) -> Self {
        let (a_ip, b_ip): (IpAddr, IpAddr) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
        let now = Instant::now();
        Self {
            a: Peer::new("A", a_ip, seed.wrapping_mul(2).wrapping_add(1), a, ep_a),
            b: Peer::new("B", b_ip, seed.wrapping_mul(2).wrapping_add(2), b, ep_b),
            now,
            start: now,
            link: Link::new(link, seed),
            seed,
            nat: None,
            buf: Vec::new(),
            traffic: None,
            next_traffic: None,
            traffic_seq: 0,
            violations: Vec::new(),
            hold_ike: None,
            held: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn peer(&mut self, side: Side) -> &mut Peer {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// A initiates to B.
    pub fn connect(&mut self) -> IkeSaHandle {
        let (local, remote) = (self.a.addr(500), self.b.addr(500));
        let cfg = self.a.config.clone();
        self.a.ike.connect(self.now, cfg, local, remote).unwrap()
    }

    /// Moves events into ESP and the record, transmits onto the link.
    fn drain(&mut self, side: Side) {
        let now = self.now;
        let nat = self.nat;
        let mut out = Vec::new();
        let mut violations = Vec::new();
        let mut removed = Vec::new();
        // What the other peer sends on, per child name: an inbound SA we remove must not
        // be one of those.
        let other_out: std::collections::HashSet<ipsec_core::Spi> = {
            let o = match side {
                Side::A => &self.b,
                Side::B => &self.a,
            };
            o.child_names()
                .iter()
                .filter_map(|n| o.outbound_spi(n))
                .collect()
        };
        {
            let p = self.peer(side);
            let who = p.name;
            while let Some(e) = p.ike.poll_event() {
                match &e {
                    Event::ChildSaInboundReady { id, inbound, .. } => {
                        match p.esp.install(now, (**inbound).clone()) {
                            Ok(i) => {
                                p.inbound_only.insert(*id, i);
                            }
                            Err(err) => violations.push(format!("{who}: install inbound {err:?}")),
                        }
                    }
                    Event::ChildSaEstablished(c) => {
                        if let Some(r) = c.replaces {
                            p.child_rekeys += 1;
                            p.replaced.insert(r);
                        }
                        let i = match p.inbound_only.remove(&c.id) {
                            Some(i) => Ok(i),
                            None => p.esp.install(now, c.inbound.clone()),
                        };
                        let o = p.esp.install(now, c.outbound.clone());
                        match (i, o) {
                            (Ok(i), Ok(o)) => {
                                p.installed.insert(c.id, (i, o));
                                p.infos.insert(c.id, (**c).clone());
                            }
                            (i, o) => violations.push(format!("{who}: install {i:?} {o:?}")),
                        }
                    }
                    Event::ChildSaDeleted {
                        id,
                        inbound_spi,
                        keep_inbound,
                        ..
                    } => {
                        // Only a rekey must be hitless (a Delete stops traffic by design):
                        // checked below if a replacement is left.
                        if other_out.contains(inbound_spi)
                            && p.replaced.contains(id)
                            && !keep_inbound
                            && let Some(i) = p.infos.get(id)
                        {
                            removed.push((i.name.clone(), *inbound_spi));
                        }
                        if let Some((i, o)) = p.installed.remove(id) {
                            p.esp.remove(o);
                            if *keep_inbound {
                                p.retiring.insert(*id, i);
                            } else {
                                p.esp.remove(i);
                            }
                        }
                        if let Some(i) = p.inbound_only.remove(id) {
                            p.esp.remove(i);
                        }
                        p.infos.remove(id);
                    }
                    Event::ChildSaInboundExpired {
                        id, inbound_spi, ..
                    } => {
                        if other_out.contains(inbound_spi) {
                            violations.push(format!(
                                "{who}: inbound SA {inbound_spi} expired while the peer sends on it"
                            ));
                        }
                        match p.retiring.remove(id) {
                            Some(i) => {
                                p.esp.remove(i);
                            }
                            None => violations.push(format!(
                                "{who}: inbound SA {inbound_spi} expired but was not kept"
                            )),
                        }
                    }
                    Event::IkeSaRekeyed { .. } => p.ike_rekeys += 1,
                    _ => {}
                }
                p.events.push(e);
            }
            for (name, spi) in removed {
                if p.outbound_child(&name).is_some() {
                    violations.push(format!(
                        "{who}: inbound SA {spi} removed while the peer sends on it"
                    ));
                }
            }
            let mut buf = Vec::new();
            while let Some(t) = p.ike.poll_transmit(now, &mut buf) {
                out.push(InFlight {
                    src: t.local,
                    dst: t.remote,
                    payload: buf.clone(),
                });
            }
            while let Some(ev) = p.esp.poll_event() {
                match ev {
                    esp::EspEvent::HardLifetime { spi, .. } => {
                        let _ = p.ike.handle_esp_event(now, spi, true);
                    }
                    esp::EspEvent::SoftLifetime { spi, .. } => {
                        let _ = p.ike.handle_esp_event(now, spi, false);
                    }
                    _ => {}
                }
            }
        }
        self.violations.extend(violations);
        if self.hold_ike == Some(side) {
            self.held.extend(out);
            return;
        }
        for mut d in out {
            if let (Side::A, Some(n)) = (side, nat) {
                let port = if d.src.port() == 500 {
                    n.base_port
                } else {
                    n.base_port + 1
                };
                d.src = SocketAddr::new(n.public, port);
            }
            self.link.send(now, d);
        }
    }

    fn deliver(&mut self, mut d: InFlight) {
        let to_a = match self.nat {
            Some(n) if d.dst.ip() == n.public => {
                d.dst = SocketAddr::new(
                    self.a.ip,
                    if d.dst.port() == n.base_port {
                        500
                    } else {
                        4500
                    },
                );
                true
            }
            _ => d.dst.ip() == self.a.ip,
        };
        let now = self.now;
        let p = if to_a { &mut self.a } else { &mut self.b };
        let mut payload = d.payload;
        match d.dst.port() {
            500 => p.ike.handle(
                now,
                Datagram {
                    local: d.dst,
                    remote: d.src,
                    payload: &payload,
                },
            ),
            0 => Self::esp_in(p, now, &mut payload, 0),
            _ => match classify_udp_4500(&payload) {
                UdpPayload::Ike(_) => p.ike.handle(
                    now,
                    Datagram {
                        local: d.dst,
                        remote: d.src,
                        payload: &payload,
                    },
                ),
                UdpPayload::Esp(_) => Self::esp_in(p, now, &mut payload, 0),
                UdpPayload::NatKeepalive => p.keepalives += 1,
                UdpPayload::Invalid => {}
            },
        }
    }

    fn esp_in(p: &mut Peer, now: Instant, payload: &mut [u8], _off: usize) {
        match p.esp.decapsulate(now, payload) {
            Ok(d) => p.delivered.push(payload[d.range].to_vec()),
            Err(e) => p.esp_drops.push(e),
        }
    }

    /// One step; false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        self.step_until(None)
    }

    /// One step, never moving the clock past `limit`; false when nothing is left to do
    /// before it.
    pub fn step_until(&mut self, limit: Option<Instant>) -> bool {
        self.drain(Side::A);
        self.drain(Side::B);
        if let Some(d) = self.link.recv(self.now) {
            self.deliver(d);
            return true;
        }
        if self.traffic.is_some() && self.next_traffic.is_none() {
            self.next_traffic = Some(self.now);
        }
        if self.next_traffic.is_some_and(|t| t <= self.now) {
            self.send_traffic();
            return true;
        }
        let next = [
            self.link.next_arrival(),
            self.a.next_deadline(),
            self.b.next_deadline(),
            self.next_traffic,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
        if limit.is_some_and(|l| next > l) {
            return false;
        }
        if next > self.now {
            self.now = next;
        }
        if self.a.next_deadline().is_some_and(|t| t <= self.now) {
            self.a.ike.handle_timeout(self.now);
            self.a.esp.handle_timeout(self.now);
        }
        if self.b.next_deadline().is_some_and(|t| t <= self.now) {
            self.b.ike.handle_timeout(self.now);
            self.b.esp.handle_timeout(self.now);
        }
        true
    }

    /// Steps until `cond` holds; panics (with the seed) after `max` steps.
    pub fn drive_until(&mut self, max: usize, mut cond: impl FnMut(&Pair) -> bool) {
        for _ in 0..max {
            if cond(self) {
                return;
            }
            self.step();
            self.drain(Side::A);
            self.drain(Side::B);
        }
        assert!(
            cond(self),
            "condition not reached after {max} steps (seed {}, t={:?})",
            self.seed,
            self.elapsed()
        );
    }

    /// Steps until `until` of virtual time has passed or nothing is left.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step_until(Some(end)) {}
        self.now = self.now.max(end);
        self.drain(Side::A);
        self.drain(Side::B);
    }

    /// No broken invariant, both ends agree on their Child SAs, and ESP dropped nothing.
    pub fn assert_healthy(&self, what: &str) {
        assert!(self.violations.is_empty(), "{what}: {:?}", self.violations);
        if let Err(e) = self.converged() {
            panic!("{what} (seed {}): not converged: {e}", self.seed);
        }
        assert!(
            self.a.esp_drops.is_empty() && self.b.esp_drops.is_empty(),
            "{what}: ESP drops A {:?} B {:?}",
            self.a.esp_drop_counts(),
            self.b.esp_drop_counts()
        );
    }

    /// Both sides have an established IKE SA and at least one Child SA installed.
    pub fn established(&self) -> bool {
        !self.a.established().is_empty()
            && !self.b.established().is_empty()
            && !self.a.installed.is_empty()
            && !self.b.installed.is_empty()
    }

    /// One packet each way on the default child, if installed (see `traffic`).
    fn send_traffic(&mut self) {
        let Some(every) = self.traffic else {
            self.next_traffic = None;
            return;
        };
        self.next_traffic = Some(self.now + every);
        self.traffic_seq += 1;
        let n = self.traffic_seq;
        for side in [Side::A, Side::B] {
            let p = self.peer(side);
            let Some(name) = p.default_child_name() else {
                continue;
            };
            let pkt = match side {
                Side::A => ipv6_udp("fd01::1", "fd02::1", 1000, 2000, &n.to_be_bytes()),
                Side::B => ipv6_udp("fd02::1", "fd01::1", 2000, 1000, &n.to_be_bytes()),
            };
            if let Err(e) = self.send_ip_via(side, &name, &pkt) {
                self.violations.push(format!("{side:?}: encapsulate {e:?}"));
            }
        }
    }

    /// Sends an inner packet from `side` on the newest installed Child SA of the child
    /// that was installed first.
    pub fn send_ip(&mut self, side: Side, packet: &[u8]) -> Result<(), esp::EncapError> {
        let name = self.peer(side).default_child_name().expect("a Child SA");
        self.send_ip_via(side, &name, packet)
    }

    /// Sends an inner packet from `side` on the newest installed Child SA named `name`.
    pub fn send_ip_via(
        &mut self,
        side: Side,
        name: &str,
        packet: &[u8],
    ) -> Result<(), esp::EncapError> {
        let now = self.now;
        let nat = self.nat;
        let p = self.peer(side);
        let child = p.outbound_child(name).expect("a Child SA");
        let (_, out) = p.installed[&child];
        let head = p.esp.headroom(out).unwrap();
        let tail = p.esp.tailroom(out, packet.len()).unwrap();
        let mut buf = vec![0u8; head + packet.len() + tail];
        buf[head..head + packet.len()].copy_from_slice(packet);
        let range = p
            .esp
            .encapsulate(now, out, &mut buf, head..head + packet.len())?;
        p.esp_sent += 1;
        let child = p.infos[&child].clone();
        let (src, dst) = match child.outbound.encap {
            Some(e) => (
                SocketAddr::new(child.outbound.local_addr, e.local_port),
                SocketAddr::new(child.outbound.remote_addr, e.remote_port),
            ),
            None => (
                SocketAddr::new(child.outbound.local_addr, 0),
                SocketAddr::new(child.outbound.remote_addr, 0),
            ),
        };
        let mut d = InFlight {
            src,
            dst,
            payload: buf[range].to_vec(),
        };
        if let (Side::A, Some(n)) = (side, nat) {
            d.src = SocketAddr::new(n.public, n.base_port + 1);
        }
        self.link.send_reliable(now, d);
        Ok(())
    }

    /// ESP packets sent and delivered, both ways.
    pub fn esp_totals(&self) -> (u64, u64) {
        (
            self.a.esp_sent + self.b.esp_sent,
            (self.a.delivered.len() + self.b.delivered.len()) as u64,
        )
    }

    /// Both peers agree on their Child SAs: every fully installed one has its mirror image
    /// on the other side, nothing is half installed, and there is one Child SA per name.
    pub fn converged(&self) -> Result<(), String> {
        let pairs = |p: &Peer| -> std::collections::BTreeSet<(String, u32, u32)> {
            p.installed
                .keys()
                .map(|c| {
                    let i = &p.infos[c];
                    (
                        i.name.clone(),
                        u32::from_be_bytes(i.inbound.spi.to_bytes()),
                        u32::from_be_bytes(i.outbound.spi.to_bytes()),
                    )
                })
                .collect()
        };
        let a = pairs(&self.a);
        let b: std::collections::BTreeSet<_> = pairs(&self.b)
            .into_iter()
            .map(|(n, i, o)| (n, o, i))
            .collect();
        if a != b {
            return Err(format!("A {a:?} / B (mirrored) {b:?}"));
        }
        if !self.a.inbound_only.is_empty() || !self.b.inbound_only.is_empty() {
            return Err(format!(
                "half-installed: A {:?} B {:?}",
                self.a.inbound_only.keys().collect::<Vec<_>>(),
                self.b.inbound_only.keys().collect::<Vec<_>>()
            ));
        }
        if a.len() != self.a.child_names().len() {
            return Err(format!("more than one Child SA for a name: {a:?}"));
        }
        Ok(())
    }
}

/// A minimal IPv6/UDP packet from `src` to `dst` with `payload`.
pub fn ipv6_udp(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let len = 8 + payload.len();
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.push(17);
    p.push(64);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

pub fn mode_of(c: &ike::ChildSaInfo) -> Mode {
    c.mode
}

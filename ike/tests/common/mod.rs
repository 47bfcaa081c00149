//! In-process test harness: two peers (IKE endpoint + ESP engine each) joined by a seeded
//! link model, in virtual time.
//!
//! `Pair::step` delivers what is due, or advances the clock to the next deadline; tests read
//! as short scripts: establish, send IPv6 packets through ESP, drop messages, close.
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
        ep.peers = vec![config.clone()];
        Self {
            name,
            ike: Endpoint::new(Arc::new(ep), provider.clone()),
            esp: EspEngine::new(provider),
            ip,
            config,
            events: Vec::new(),
            installed: HashMap::new(),
            delivered: Vec::new(),
            esp_drops: Vec::new(),
            keepalives: 0,
        }
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
        {
            let p = self.peer(side);
            while let Some(e) = p.ike.poll_event() {
                match &e {
                    Event::ChildSaEstablished(c) => {
                        let i = p
                            .esp
                            .install(now, c.inbound.clone())
                            .expect("install inbound");
                        let o = p
                            .esp
                            .install(now, c.outbound.clone())
                            .expect("install outbound");
                        p.installed.insert(c.id, (i, o));
                    }
                    Event::ChildSaDeleted { id, .. } => {
                        if let Some((i, o)) = p.installed.remove(id) {
                            p.esp.remove(i);
                            p.esp.remove(o);
                        }
                    }
                    _ => {}
                }
                p.events.push(e);
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
                if let esp::EspEvent::HardLifetime { spi, .. } = ev {
                    let _ = p.ike.handle_esp_event(now, spi, true);
                }
            }
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
        self.drain(Side::A);
        self.drain(Side::B);
        if let Some(d) = self.link.recv(self.now) {
            self.deliver(d);
            return true;
        }
        let next = [
            self.link.next_arrival(),
            self.a.next_deadline(),
            self.b.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
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
        while self.now < end {
            let before = self.now;
            if !self.step() {
                break;
            }
            if self.now > end {
                self.now = end.max(before);
                break;
            }
        }
        self.drain(Side::A);
        self.drain(Side::B);
    }

    /// Both sides have an established IKE SA and at least one Child SA installed.
    pub fn established(&self) -> bool {
        !self.a.established().is_empty()
            && !self.b.established().is_empty()
            && !self.a.installed.is_empty()
            && !self.b.installed.is_empty()
    }

    /// Sends an inner packet from `side` through its first installed outbound SA.
    pub fn send_ip(&mut self, side: Side, packet: &[u8]) -> Result<(), esp::EncapError> {
        let now = self.now;
        let nat = self.nat;
        let p = self.peer(side);
        let (&_child, &(_, out)) = p
            .installed
            .iter()
            .min_by_key(|(c, _)| c.0)
            .expect("a Child SA");
        let head = p.esp.headroom(out).unwrap();
        let tail = p.esp.tailroom(out, packet.len()).unwrap();
        let mut buf = vec![0u8; head + packet.len() + tail];
        buf[head..head + packet.len()].copy_from_slice(packet);
        let range = p
            .esp
            .encapsulate(now, out, &mut buf, head..head + packet.len())?;
        let child = p
            .children()
            .into_iter()
            .find(|c| p.installed.get(&c.id).is_some_and(|x| x.1 == out))
            .unwrap();
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
        self.link.send(now, d);
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

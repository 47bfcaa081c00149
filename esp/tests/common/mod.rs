//! Shared helpers for the integration tests: SA builders, packet builders (with etherparse
//! as an independent implementation), and a judge for engine output.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use esp::{
    Direction, EspConfig, EspEngine, EspSaParams, EspTransform, Lifetime, Mode, Output, SaId,
    UdpEncap,
};
use etherparse::{Ipv4Header, Ipv6Slice, PacketBuilder, UdpHeader};
use ipsec_core::crypto::AeadAlgorithm;
use ipsec_core::transform::IntegId;
use ipsec_core::{RustCrypto, SecretBytes, Spi, TrafficSelector};

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    Gcm128,
    Gcm256,
    ChaCha,
    CbcSha256,
}

pub const SUITES: [Suite; 4] = [
    Suite::Gcm128,
    Suite::Gcm256,
    Suite::ChaCha,
    Suite::CbcSha256,
];

pub fn transform(suite: Suite) -> EspTransform {
    let keymat: Vec<u8> = (0u8..80)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    match suite {
        Suite::Gcm128 => {
            EspTransform::aead_from_keymat(AeadAlgorithm::Aes128Gcm, &keymat[..20]).unwrap()
        }
        Suite::Gcm256 => {
            EspTransform::aead_from_keymat(AeadAlgorithm::Aes256Gcm, &keymat[..36]).unwrap()
        }
        Suite::ChaCha => {
            EspTransform::aead_from_keymat(AeadAlgorithm::ChaCha20Poly1305, &keymat[..36]).unwrap()
        }
        Suite::CbcSha256 => EspTransform::CbcHmac {
            enc_key: SecretBytes::from_slice(&keymat[..32]),
            integ: IntegId::HMAC_SHA2_256_128,
            integ_key: SecretBytes::from_slice(&keymat[32..64]),
        },
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ts(s: &str) -> TrafficSelector {
    s.parse().unwrap()
}

/// Host A (initiator) and host B: inner subnets and outer addresses per family.
pub fn inner_addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (ip("fd01::5"), ip("fd02::7"))
    } else {
        (ip("10.1.0.5"), ip("10.2.0.7"))
    }
}

pub fn outer_addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (ip("2001:db8::1"), ip("2001:db8::2"))
    } else {
        (ip("192.0.2.1"), ip("198.51.100.2"))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub suite: Suite,
    pub mode: Mode,
    pub inner_v6: bool,
    pub outer_v6: bool,
    pub esn: bool,
    pub encap: bool,
    pub output: Output,
}

impl Setup {
    pub fn simple(suite: Suite) -> Self {
        Self {
            suite,
            mode: Mode::Tunnel,
            inner_v6: false,
            outer_v6: false,
            esn: false,
            encap: false,
            output: Output::Esp,
        }
    }
}

pub const SPI: u32 = 0xc0ffee01;

/// Parameters for the SA from A to B, as seen by `direction` (A outbound, B inbound).
pub fn params(s: &Setup, direction: Direction) -> EspSaParams {
    let (oa, ob) = outer_addrs(s.outer_v6);
    let (ia, ib) = inner_addrs(s.inner_v6);
    let (ts_a, ts_b) = match s.mode {
        Mode::Tunnel => {
            if s.inner_v6 {
                (ts("fd01::/64"), ts("fd02::/64"))
            } else {
                (ts("10.1.0.0/16"), ts("10.2.0.0/16"))
            }
        }
        Mode::Transport => (
            TrafficSelector::new(oa, oa).unwrap(),
            TrafficSelector::new(ob, ob).unwrap(),
        ),
    };
    let _ = (ia, ib);
    let (local, remote, ts_local, ts_remote) = match direction {
        Direction::Outbound => (oa, ob, ts_a, ts_b),
        Direction::Inbound => (ob, oa, ts_b, ts_a),
    };
    EspSaParams {
        spi: Spi(SPI),
        direction,
        mode: s.mode,
        transform: transform(s.suite),
        esn: s.esn,
        replay_window: 128,
        lifetime: Lifetime::default(),
        encap: s.encap.then_some(match direction {
            Direction::Outbound => UdpEncap {
                local_port: 4500,
                remote_port: 4501,
            },
            Direction::Inbound => UdpEncap {
                local_port: 4501,
                remote_port: 4500,
            },
        }),
        local_addr: local,
        remote_addr: remote,
        ts_local: vec![ts_local],
        ts_remote: vec![ts_remote],
    }
}

pub struct Pair {
    pub setup: Setup,
    pub tx: EspEngine,
    pub rx: EspEngine,
    pub out: SaId,
    pub inb: SaId,
}

pub fn t0() -> Instant {
    // A fixed base; tests add virtual time to it.
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

impl Pair {
    pub fn new(setup: Setup) -> Self {
        Self::with_params(
            setup,
            params(&setup, Direction::Outbound),
            params(&setup, Direction::Inbound),
        )
    }

    pub fn with_params(setup: Setup, o: EspSaParams, i: EspSaParams) -> Self {
        let p = Arc::new(RustCrypto::with_seed(1));
        let mut tx = EspEngine::with_config(p.clone(), EspConfig::with_output(setup.output));
        let mut rx = EspEngine::new(p);
        let out = tx.install(t0(), o).unwrap();
        let inb = rx.install(t0(), i).unwrap();
        Self {
            setup,
            tx,
            rx,
            out,
            inb,
        }
    }

    /// Encapsulates `pkt`, returning the bytes to send.
    pub fn encap(&mut self, pkt: &[u8]) -> Result<Vec<u8>, esp::EncapError> {
        self.encap_at(t0(), pkt)
    }

    pub fn encap_at(&mut self, now: Instant, pkt: &[u8]) -> Result<Vec<u8>, esp::EncapError> {
        let head = self.tx.headroom(self.out).unwrap();
        let tail = self.tx.tailroom(self.out, pkt.len()).unwrap();
        let mut buf = vec![0u8; head + pkt.len() + tail];
        buf[head..head + pkt.len()].copy_from_slice(pkt);
        let r = self
            .tx
            .encapsulate(now, self.out, &mut buf, head..head + pkt.len())?;
        Ok(buf[r].to_vec())
    }

    /// Decapsulates wire bytes as the receiver gets them.
    pub fn decap(&mut self, wire: &[u8]) -> Result<(Vec<u8>, esp::Decapsulated), esp::DropReason> {
        self.decap_at(t0(), wire)
    }

    pub fn decap_at(
        &mut self,
        now: Instant,
        wire: &[u8],
    ) -> Result<(Vec<u8>, esp::Decapsulated), esp::DropReason> {
        let mut buf = wire.to_vec();
        let d = match self.setup.output {
            Output::Ip => self.rx.decapsulate_ip(now, &mut buf)?,
            _ => self.rx.decapsulate(now, &mut buf)?,
        };
        Ok((buf[d.range.clone()].to_vec(), d))
    }
}

/// A UDP datagram in IPv4 or IPv6 from `src` to `dst`, built by etherparse.
pub fn udp_packet(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let b = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 33),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 33),
        _ => panic!("mixed families"),
    }
    .udp(1234, 5678);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

/// The inner packet a test sends for `setup`: A → B.
pub fn inner_packet(s: &Setup, payload: &[u8]) -> Vec<u8> {
    let (a, b) = match s.mode {
        Mode::Tunnel => inner_addrs(s.inner_v6),
        Mode::Transport => outer_addrs(s.outer_v6),
    };
    udp_packet(a, b, payload)
}

/// An IPv6 UDP packet with hop-by-hop, destination options and an atomic fragment header
/// (RFC 6946) before the upper layer, checksummed by etherparse.
pub fn ipv6_with_ext_headers(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("v6 only")
    };
    let udp = UdpHeader::with_ipv6_checksum(
        1234,
        5678,
        &etherparse::Ipv6Header {
            source: s.octets(),
            destination: d.octets(),
            ..Default::default()
        },
        payload,
    )
    .unwrap();
    let mut upper = udp.to_bytes().to_vec();
    upper.extend_from_slice(payload);
    let mut ext = Vec::new();
    // Hop-by-hop: next = dest opts (60), len 0, PadN(4).
    ext.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    // Destination options: next = fragment (44), len 0, PadN(4).
    ext.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    // Atomic fragment: next = UDP, offset 0, M = 0, id.
    ext.extend_from_slice(&[17, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
    let plen = ext.len() + upper.len();
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(plen as u16).to_be_bytes());
    v.push(0); // hop-by-hop
    v.push(44);
    v.extend_from_slice(&s.octets());
    v.extend_from_slice(&d.octets());
    v.extend_from_slice(&ext);
    v.extend_from_slice(&upper);
    v
}

/// Checks an outer IP packet built by the engine with etherparse: header checksum and
/// lengths, protocol, UDP header and checksum; returns the ESP part.
pub fn judge_outer(wire: &[u8], encap: bool) -> Vec<u8> {
    let (proto, payload, src, dst): (u8, &[u8], IpAddr, IpAddr) = match wire[0] >> 4 {
        4 => {
            let (h, rest) = Ipv4Header::from_slice(wire).expect("valid IPv4 header");
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            assert_eq!(usize::from(h.total_len), wire.len(), "IPv4 total length");
            assert!(!h.is_fragmenting_payload());
            (
                h.protocol.0,
                &rest[..usize::from(h.total_len) - h.header_len()],
                IpAddr::from(h.source),
                IpAddr::from(h.destination),
            )
        }
        6 => {
            let s = Ipv6Slice::from_slice(wire).expect("valid IPv6 packet");
            let h = s.header();
            assert_eq!(
                usize::from(h.payload_length()) + 40,
                wire.len(),
                "IPv6 payload length"
            );
            (
                s.payload().ip_number.0,
                s.payload().payload,
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
            )
        }
        v => panic!("bad version {v}"),
    };
    if encap {
        assert_eq!(proto, 17, "UDP-encapsulated");
        let (u, esp) = UdpHeader::from_slice(payload).expect("UDP header");
        assert_eq!(usize::from(u.length), payload.len(), "UDP length");
        assert_eq!((u.source_port, u.destination_port), (4500, 4501));
        match (src, dst) {
            (IpAddr::V4(..), _) => assert_eq!(u.checksum, 0, "IPv4 UDP-ESP checksum is zero"),
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let c = u
                    .calc_checksum_ipv6_raw(s.octets(), d.octets(), esp)
                    .unwrap();
                assert_eq!(u.checksum, c, "IPv6 UDP checksum");
                assert_ne!(u.checksum, 0);
            }
            _ => unreachable!(),
        }
        esp.to_vec()
    } else {
        assert_eq!(proto, 50, "ESP");
        payload.to_vec()
    }
}

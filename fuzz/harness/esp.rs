//! ESP harnesses: arbitrary packets against inbound SAs of every suite, mode and ESN
//! setting, with real cryptography (nothing but packets we sealed may ever be accepted)
//! and with [`FuzzCrypto`] (NO SECURITY; lets the fuzzer reach padding, inner packet and
//! selector checks), plus encapsulate → decapsulate round trips with tampering and replay.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use esp::{
    Direction, DropReason, EspConfig, EspEngine, EspSaParams, EspTransform, Lifetime, Mode, Output,
    UdpEncap,
};
use ipsec_core::crypto::{AeadAlgorithm, CryptoProvider};
use ipsec_core::transform::IntegId;
use ipsec_core::{RustCrypto, SecretBytes, Spi, TrafficSelector};

use crate::input::{Input, Output as Builder};
use crate::provider::FuzzCrypto;

/// Number of SA configurations: suite (4) × mode (2) × ESN (2) × family (2).
pub const CONFIGS: usize = 32;
const SPI_BASE: u32 = 0x0000_1000;

/// One SA configuration.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// 0 AES-128-GCM, 1 AES-256-GCM, 2 ChaCha20-Poly1305, 3 AES-CBC + HMAC-SHA-256.
    pub suite: u8,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Extended sequence numbers.
    pub esn: bool,
    /// IPv6 (inner and outer) instead of IPv4.
    pub v6: bool,
    /// UDP encapsulation (RFC 3948).
    pub encap: bool,
}

impl Config {
    /// Configuration number `idx` (taken modulo [`CONFIGS`]).
    pub fn get(idx: usize) -> Self {
        let idx = idx % CONFIGS;
        let esn = idx & 8 != 0;
        let v6 = idx & 16 != 0;
        Self {
            suite: (idx & 3) as u8,
            mode: if idx & 4 == 0 {
                Mode::Tunnel
            } else {
                Mode::Transport
            },
            esn,
            v6,
            encap: esn ^ v6,
        }
    }

    fn spi(idx: usize) -> Spi {
        Spi(SPI_BASE + (idx % CONFIGS) as u32)
    }

    /// Outer addresses (A, B): A sends, B receives.
    pub fn outer(&self) -> (IpAddr, IpAddr) {
        if self.v6 {
            (ip("2001:db8::a"), ip("2001:db8::b"))
        } else {
            (ip("192.0.2.10"), ip("198.51.100.11"))
        }
    }

    /// Inner addresses used for round trips (tunnel mode).
    pub fn inner(&self) -> (IpAddr, IpAddr) {
        if self.v6 {
            (ip("fd01::5"), ip("fd02::7"))
        } else {
            (ip("10.1.0.5"), ip("10.2.0.7"))
        }
    }

    /// (A's selectors, B's selectors).
    fn selectors(&self) -> (Vec<TrafficSelector>, Vec<TrafficSelector>) {
        let (oa, ob) = self.outer();
        match (self.mode, self.v6) {
            (Mode::Transport, _) => (
                vec![TrafficSelector::new(oa, oa).expect("host")],
                vec![TrafficSelector::new(ob, ob).expect("host")],
            ),
            (Mode::Tunnel, false) => (
                vec![ts("10.1.0.0/16")],
                vec![ts("10.2.0.0/16"), ts("10.3.0.0/24[udp/1000-2000]")],
            ),
            (Mode::Tunnel, true) => (
                vec![ts("fd01::/64")],
                vec![ts("fd02::/64"), ts("fd03::/64[udp/1000-2000]")],
            ),
        }
    }

    fn params(&self, idx: usize, direction: Direction) -> EspSaParams {
        let (oa, ob) = self.outer();
        let (ts_a, ts_b) = self.selectors();
        let (local_addr, remote_addr, ts_local, ts_remote) = match direction {
            Direction::Outbound => (oa, ob, ts_a, ts_b),
            Direction::Inbound => (ob, oa, ts_b, ts_a),
        };
        EspSaParams {
            spi: Self::spi(idx),
            direction,
            mode: self.mode,
            transform: transform(self.suite),
            esn: self.esn,
            replay_window: 64,
            lifetime: Lifetime::default(),
            encap: self.encap.then_some(UdpEncap {
                local_port: 4500,
                remote_port: 4500,
            }),
            local_addr,
            remote_addr,
            ts_local,
            ts_remote,
        }
    }

    /// Octets before the ESP header in an [`Output::Ip`] packet.
    fn esp_offset_ip(&self) -> usize {
        (if self.v6 { 40 } else { 20 }) + if self.encap { 8 } else { 0 }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

fn ts(s: &str) -> TrafficSelector {
    s.parse().expect("literal selector")
}

/// Fixed keys per suite.
fn transform(suite: u8) -> EspTransform {
    let keymat: Vec<u8> = (0u8..64)
        .map(|i| i.wrapping_mul(29).wrapping_add(3))
        .collect();
    let aead = |alg: AeadAlgorithm| {
        EspTransform::aead_from_keymat(alg, &keymat[..alg.keymat_len()]).expect("keymat length")
    };
    match suite % 4 {
        0 => aead(AeadAlgorithm::Aes128Gcm),
        1 => aead(AeadAlgorithm::Aes256Gcm),
        2 => aead(AeadAlgorithm::ChaCha20Poly1305),
        _ => EspTransform::CbcHmac {
            enc_key: SecretBytes::from_slice(&keymat[..16]),
            integ: IntegId::HMAC_SHA2_256_128,
            integ_key: SecretBytes::from_slice(&keymat[16..48]),
        },
    }
}

/// An IPv4 or IPv6 UDP packet (checksum left zero; nothing checks it).
pub fn udp_packet(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut p = Vec::with_capacity(40 + udp_len);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + udp_len) as u16;
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let mut sum = 0u32;
            for c in p.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(udp_len as u16).to_be_bytes());
            p.extend_from_slice(&[17, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// The packet A sends with configuration `c`: the inner packet (tunnel) or the whole
/// transport-mode packet.
fn plain_packet(c: &Config, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let (a, b) = match c.mode {
        Mode::Tunnel => c.inner(),
        Mode::Transport => c.outer(),
    };
    udp_packet(a, b, sport, dport, payload)
}

/// The part of a plain packet the ICV authenticates (tunnel: all; transport: upper layer).
fn authenticated<'a>(c: &Config, pkt: &'a [u8]) -> &'a [u8] {
    match c.mode {
        Mode::Tunnel => pkt,
        Mode::Transport => &pkt[if c.v6 { 40 } else { 20 }..],
    }
}

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn receiver<P: CryptoProvider>(provider: Arc<P>) -> EspEngine<P> {
    let mut rx = EspEngine::new(provider);
    for idx in 0..CONFIGS {
        rx.install(t0(), Config::get(idx).params(idx, Direction::Inbound))
            .expect("install inbound");
    }
    rx
}

fn seal<P: CryptoProvider>(
    provider: Arc<P>,
    idx: usize,
    output: Output,
    pkts: &[Vec<u8>],
) -> Vec<Vec<u8>> {
    let c = Config::get(idx);
    let mut tx = EspEngine::with_config(provider, EspConfig::with_output(output));
    let out = tx
        .install(t0(), c.params(idx, Direction::Outbound))
        .expect("install outbound");
    pkts.iter()
        .map(|p| {
            let head = tx.headroom(out).expect("sa");
            let tail = tx.tailroom(out, p.len()).expect("sa");
            let mut buf = vec![0u8; head + p.len() + tail];
            buf[head..head + p.len()].copy_from_slice(p);
            let r = tx
                .encapsulate(t0(), out, &mut buf, head..head + p.len())
                .expect("encapsulate");
            buf[r].to_vec()
        })
        .collect()
}

/// Packets sealed with real keys: (wire bytes, whether they are whole IP packets), and
/// what each authentic (SPI, sequence number) carries.
struct Known {
    wire: Vec<(Vec<u8>, bool)>,
    auth: HashMap<(u32, u64), Vec<u8>>,
    fuzz_wire: Vec<(Vec<u8>, bool)>,
}

fn known() -> &'static Known {
    static K: OnceLock<Known> = OnceLock::new();
    K.get_or_init(|| {
        let mut k = Known {
            wire: Vec::new(),
            auth: HashMap::new(),
            fuzz_wire: Vec::new(),
        };
        for idx in 0..CONFIGS {
            let c = Config::get(idx);
            let pkts: Vec<Vec<u8>> = (0..2u16)
                .map(|n| plain_packet(&c, 1000 + n, 1500, &[n as u8; 24]))
                .collect();
            for (seq, p) in pkts.iter().enumerate() {
                let spi = Config::spi(idx).0;
                k.auth
                    .insert((spi, seq as u64 + 1), authenticated(&c, p).to_vec());
            }
            for output in [Output::Esp, Output::Ip] {
                let is_ip = output == Output::Ip;
                let real = Arc::new(RustCrypto::with_seed(idx as u64));
                for w in seal(real, idx, output, &pkts) {
                    k.wire.push((w, is_ip));
                }
                let fz = Arc::new(FuzzCrypto::new(idx as u64));
                for w in seal(fz, idx, output, &pkts) {
                    k.fuzz_wire.push((w, is_ip));
                }
            }
        }
        k
    })
}

fn in_any(list: &[TrafficSelector], a: IpAddr) -> bool {
    list.iter().any(|t| t.start() <= a && a <= t.end())
}

/// Addresses of an IPv4 / IPv6 header, if `p` starts with one of `version`.
fn addrs(p: &[u8]) -> Option<(u8, IpAddr, IpAddr)> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let s: [u8; 4] = p[12..16].try_into().ok()?;
            let d: [u8; 4] = p[16..20].try_into().ok()?;
            Some((4, IpAddr::from(s), IpAddr::from(d)))
        }
        6 if p.len() >= 40 => {
            let s: [u8; 16] = p[8..24].try_into().ok()?;
            let d: [u8; 16] = p[24..40].try_into().ok()?;
            Some((6, IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}

/// First byte: 0 real keys, 1 fuzzing keys, 2 round trip; second byte bit 0 selects
/// `decapsulate_ip` over `decapsulate`.
pub fn check_esp(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 3 {
        0 => {
            let ip_api = input.u8() & 1 != 0;
            let mut buf = input.rest().to_vec();
            let mut rx = receiver(Arc::new(RustCrypto::with_seed(99)));
            let r = if ip_api {
                rx.decapsulate_ip(t0(), &mut buf)
            } else {
                rx.decapsulate(t0(), &mut buf)
            };
            if let Ok(d) = r {
                let auth = known()
                    .auth
                    .get(&(d.spi.0, d.seq))
                    .unwrap_or_else(|| panic!("accepted a packet nobody sealed: {d:?}"));
                assert!(
                    buf[d.range.clone()].ends_with(auth),
                    "accepted content differs from what was sealed: {d:?}"
                );
            }
        }
        1 => {
            let ip_api = input.u8() & 1 != 0;
            let mut buf = input.rest().to_vec();
            let mut rx = receiver(Arc::new(FuzzCrypto::new(0)));
            let r = if ip_api {
                rx.decapsulate_ip(t0(), &mut buf)
            } else {
                rx.decapsulate(t0(), &mut buf)
            };
            if let Ok(d) = r {
                assert!(d.range.start <= d.range.end && d.range.end <= buf.len());
                let idx = (d.spi.0 - SPI_BASE) as usize;
                assert!(idx < CONFIGS, "unknown SPI accepted: {d:?}");
                let c = Config::get(idx);
                let p = c.params(idx, Direction::Inbound);
                let out = &buf[d.range.clone()];
                if c.mode == Mode::Tunnel || ip_api {
                    let (v, src, dst) = addrs(out)
                        .unwrap_or_else(|| panic!("accepted a non-IP result: {d:?} {out:02x?}"));
                    if c.mode == Mode::Tunnel {
                        assert_eq!(d.next_header, if v == 4 { 4 } else { 41 }, "{d:?}");
                    }
                    assert!(
                        in_any(&p.ts_remote, src),
                        "source {src} outside {:?}",
                        p.ts_remote
                    );
                    assert!(
                        in_any(&p.ts_local, dst),
                        "destination {dst} outside {:?}",
                        p.ts_local
                    );
                }
            }
        }
        _ => round_trip(&mut input),
    }
}

fn round_trip(input: &mut Input<'_>) {
    let idx = usize::from(input.u8()) % CONFIGS;
    let flags = input.u8();
    let output = if flags & 1 != 0 {
        Output::Ip
    } else {
        Output::Esp
    };
    let (sport, dport) = (input.u16(), input.u16());
    let flip_at = usize::from(input.u16());
    let flip = input.u8();
    let payload = input.chunk();
    let c = Config::get(idx);
    let pkt = plain_packet(&c, sport, dport, payload);
    let provider = Arc::new(RustCrypto::with_seed(5));
    let wire = seal(provider.clone(), idx, output, std::slice::from_ref(&pkt)).remove(0);
    let mut rx = EspEngine::new(provider);
    let inb = rx
        .install(t0(), c.params(idx, Direction::Inbound))
        .expect("install inbound");
    let decap = |rx: &mut EspEngine, buf: &mut Vec<u8>| match output {
        Output::Ip => rx.decapsulate_ip(t0(), buf),
        Output::Esp => rx.decapsulate(t0(), buf),
    };
    // Tampering anywhere in the ESP part is detected, and does not move the window.
    let esp_at = if output == Output::Ip {
        c.esp_offset_ip()
    } else {
        0
    };
    if flip != 0 && wire.len() > esp_at {
        let mut bad = wire.clone();
        let at = esp_at + flip_at % (wire.len() - esp_at);
        bad[at] ^= flip;
        if let Ok(d) = decap(&mut rx, &mut bad) {
            panic!("tampered packet (octet {at} ^ {flip:#x}) accepted: {d:?}");
        }
    }
    let mut buf = wire.clone();
    let d = decap(&mut rx, &mut buf)
        .unwrap_or_else(|e| panic!("round trip {c:?} {output:?} refused: {e:?}"));
    assert_eq!((d.sa, d.spi, d.seq), (inb, Config::spi(idx), 1));
    let got = &buf[d.range.clone()];
    match (c.mode, output) {
        (Mode::Tunnel, _) | (Mode::Transport, Output::Ip) => assert_eq!(got, &pkt[..]),
        (Mode::Transport, Output::Esp) => assert_eq!(got, authenticated(&c, &pkt)),
    }
    let mut again = wire;
    match decap(&mut rx, &mut again) {
        Err(DropReason::Replayed { .. }) => {}
        other => panic!("replayed packet not refused as a replay: {other:?}"),
    }
}

/// Seeds: every sealed packet under both key sets, and round trips of each configuration.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let k = known();
    let mut out = Vec::new();
    for (mode, list) in [(0u8, &k.wire), (1u8, &k.fuzz_wire)] {
        for (n, (w, is_ip)) in list.iter().enumerate() {
            // Keep the corpus small: the first packet of each SA and output.
            if n % 2 == 1 {
                continue;
            }
            let mut b = Builder::default();
            b.u8(mode).u8(u8::from(*is_ip)).raw(w);
            out.push((
                format!("{}-{:03}", if mode == 0 { "real" } else { "fuzz" }, n),
                b.data,
            ));
        }
    }
    for idx in 0..CONFIGS {
        for flags in 0..2u8 {
            let mut b = Builder::default();
            b.u8(2)
                .u8(idx as u8)
                .u8(flags)
                .u16(1200)
                .u16(1500)
                .u16(7)
                .u8(0);
            b.chunk(b"round trip payload");
            out.push((format!("rt-{idx:02}-{flags}"), b.data));
        }
    }
    out
}

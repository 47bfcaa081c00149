//! IKE fuzz harnesses: the message codec, and the endpoint state machine as responder and
//! as initiator, driven by sequences of datagrams, timeouts and commands.
//!
//! The endpoints use [`FuzzCrypto`] (NO SECURITY): with it, a message the fuzzer derives
//! from a captured one still passes the integrity check of the SK payload, so IKE_AUTH and
//! INFORMATIONAL processing are reachable. The captured exchange is produced in-process by
//! [`exchange`] (two endpoints talking to each other), so the harness and its seeds can
//! never drift apart.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use esp::{EspEngine, SaId};
use ike::message::{Message, ProtocolId};
use ike::proposal::parse_proposals;
use ike::{
    ChildConfig, ChildSaId, Datagram, Endpoint, EndpointConfig, Event, IkeSaHandle, PeerConfig,
};
use ipsec_core::natt::NON_ESP_MARKER;
use ipsec_core::{SecretBytes, TrafficSelector};

use crate::input::{Input, Output};
use crate::provider::FuzzCrypto;

/// Initiator address.
pub const A_IP: &str = "fd00::1";
/// Responder address.
pub const B_IP: &str = "fd00::2";
/// Some other address, for datagrams from elsewhere.
pub const C_IP: &str = "192.0.2.99";
const PSK: &[u8] = b"fuzzing-only-pre-shared-key-0123456789";
const SEED_A: u64 = 1;
const SEED_B: u64 = 2;
/// Upper bound on operations per input, to keep every execution short.
pub const MAX_OPS: usize = 48;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

fn ts(s: &str) -> TrafficSelector {
    s.parse().expect("literal selector")
}

fn peer_config(name: &str, local: IpAddr, remote: IpAddr, lts: &str, rts: &str) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        local_id: ike::config::identity_from_ip(local),
        remote_id: Some(ike::config::identity_from_ip(remote)),
        psk: SecretBytes::from_slice(PSK),
        remote_addrs: vec![remote],
        ike_proposals: parse_proposals(
            ProtocolId::IKE,
            "aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048, chacha20poly1305-prfsha512-ecp256",
        )
        .expect("literal proposals"),
        force_encap: false,
        dpd_delay: Some(Duration::from_secs(30)),
        initial_contact: true,
        rekey_time: None,
        life_time: None,
        children: vec![ChildConfig::new(
            "child",
            vec![ts(lts)],
            vec![ts(rts), ts("10.9.0.0/16[udp/1000-2000]")],
            parse_proposals(
                ProtocolId::ESP,
                "aes256gcm16, aes128-sha256-esn-noesn, chacha20poly1305-x25519",
            )
            .expect("literal proposals"),
        )],
    }
}

fn endpoint_config(peer: &Arc<PeerConfig>) -> Arc<EndpointConfig> {
    Arc::new(EndpointConfig {
        peers: vec![peer.clone()],
        ..EndpointConfig::default()
    })
}

fn config_a() -> Arc<PeerConfig> {
    Arc::new(peer_config(
        "a",
        ip(A_IP),
        ip(B_IP),
        "fd01::/64",
        "fd02::/64",
    ))
}

fn config_b() -> Arc<PeerConfig> {
    Arc::new(peer_config(
        "b",
        ip(B_IP),
        ip(A_IP),
        "fd02::/64",
        "fd01::/64",
    ))
}

/// One side of the fuzzed exchange, with the ESP engine its Child SAs go into.
struct Side {
    ep: Endpoint<FuzzCrypto>,
    esp: EspEngine<FuzzCrypto>,
    installed: Vec<(ChildSaId, SaId, SaId)>,
    ip: IpAddr,
    established: Vec<IkeSaHandle>,
    buf: Vec<u8>,
}

impl Side {
    fn new(config: Arc<PeerConfig>, seed: u64, ip: IpAddr) -> Self {
        let provider = Arc::new(FuzzCrypto::new(seed));
        Self {
            ep: Endpoint::new(endpoint_config(&config), provider.clone()),
            esp: EspEngine::new(provider),
            installed: Vec::new(),
            ip,
            established: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Drains events (checking that every Child SA installs into ESP) and returns the
    /// datagrams to send as (local port, remote, payload), each checked to be well formed.
    fn drain(&mut self, now: Instant) -> Vec<(u16, SocketAddr, Vec<u8>)> {
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                Event::IkeSaEstablished { sa, .. } => self.established.push(sa),
                Event::ChildSaEstablished(c) => {
                    let i = self
                        .esp
                        .install(now, c.inbound.clone())
                        .unwrap_or_else(|e| {
                            panic!("IKE produced an uninstallable inbound SA: {e}: {c:?}")
                        });
                    let o = self
                        .esp
                        .install(now, c.outbound.clone())
                        .unwrap_or_else(|e| {
                            panic!("IKE produced an uninstallable outbound SA: {e}: {c:?}")
                        });
                    self.installed.push((c.id, i, o));
                }
                Event::ChildSaDeleted { id, .. } => {
                    if let Some(k) = self.installed.iter().position(|x| x.0 == id) {
                        let (_, i, o) = self.installed.remove(k);
                        self.esp.remove(i);
                        self.esp.remove(o);
                    }
                }
                Event::IkeSaClosed { sa, .. } => self.established.retain(|&s| s != sa),
                _ => {}
            }
        }
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_transmit(now, &mut self.buf) {
            check_emitted(t.local.port(), &self.buf);
            out.push((t.local.port(), t.remote, self.buf.clone()));
        }
        out
    }
}

/// Everything an endpoint sends must be a keepalive or a well-formed IKE message.
fn check_emitted(local_port: u16, payload: &[u8]) {
    if payload == [ipsec_core::natt::NAT_KEEPALIVE] {
        return;
    }
    let msg = if local_port == ipsec_core::natt::IKE_PORT {
        payload
    } else {
        payload
            .strip_prefix(&NON_ESP_MARKER[..])
            .expect("datagram on the NAT-T port carries the non-ESP marker")
    };
    if let Err(e) = Message::decode(msg) {
        panic!("endpoint emitted a message that does not decode: {e:?}");
    }
}

/// A captured exchange between two endpoints with [`FuzzCrypto`].
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What the initiator sent, in order, as received by the responder: (local port of the
    /// responder, payload).
    pub to_responder: Vec<(u16, Vec<u8>)>,
    /// What the responder sent, in order, as received by the initiator.
    pub to_initiator: Vec<(u16, Vec<u8>)>,
}

/// Runs IKE_SA_INIT, IKE_AUTH, a liveness check, a Child SA delete and an IKE SA delete
/// between two endpoints and records every datagram. Deterministic.
pub fn exchange() -> &'static Exchange {
    static EX: OnceLock<Exchange> = OnceLock::new();
    EX.get_or_init(|| {
        let now = Instant::now();
        let mut a = Side::new(config_a(), SEED_A, ip(A_IP));
        let mut b = Side::new(config_b(), SEED_B, ip(B_IP));
        let mut ex = Exchange {
            to_responder: Vec::new(),
            to_initiator: Vec::new(),
        };
        let sa =
            a.ep.connect(
                now,
                config_a(),
                SocketAddr::new(a.ip, 500),
                SocketAddr::new(b.ip, 500),
            )
            .expect("connect");
        let pump = |a: &mut Side, b: &mut Side, ex: &mut Exchange| {
            for _ in 0..64 {
                let from_a = a.drain(now);
                let from_b = b.drain(now);
                if from_a.is_empty() && from_b.is_empty() {
                    return;
                }
                for (port, to, p) in from_a {
                    ex.to_responder.push((to.port(), p.clone()));
                    let d = Datagram {
                        local: to,
                        remote: SocketAddr::new(a.ip, port),
                        payload: &p,
                    };
                    b.ep.handle(now, d);
                }
                for (port, to, p) in from_b {
                    ex.to_initiator.push((to.port(), p.clone()));
                    let d = Datagram {
                        local: to,
                        remote: SocketAddr::new(b.ip, port),
                        payload: &p,
                    };
                    a.ep.handle(now, d);
                }
            }
            panic!("exchange does not settle");
        };
        pump(&mut a, &mut b, &mut ex);
        assert!(a.ep.is_established(sa), "fuzzing endpoints establish");
        assert_eq!(a.installed.len(), 1, "one Child SA");
        a.ep.probe(now, sa).expect("probe");
        pump(&mut a, &mut b, &mut ex);
        let child = a.installed[0].0;
        a.ep.delete_child_sa(now, child).expect("delete child");
        pump(&mut a, &mut b, &mut ex);
        a.ep.close(now, sa).expect("close");
        pump(&mut a, &mut b, &mut ex);
        assert!(!a.ep.is_established(sa));
        ex
    })
}

/// Which role the fuzzed endpoint plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Fresh endpoint with the responder's configuration.
    Responder,
    /// Endpoint that called `connect` first, with the initiator's configuration.
    Initiator,
}

/// Operation codes of the endpoint harness input.
pub mod op {
    /// `flags: u8, payload: chunk` — flags bit 0: arrive on port 4500; bit 1: prepend
    /// the non-ESP marker; bit 2: from an unrelated address; bit 3: from port 4500.
    pub const DATAGRAM: u8 = 0;
    /// `ms: u16` — advance the clock by `ms * 10` ms, then run due timers.
    pub const ADVANCE: u8 = 1;
    /// `index: u8, count: u8, count × (pos: u16, xor: u8)` — a captured message from the
    /// peer, with up to 3 bytes flipped.
    pub const REPLAY: u8 = 2;
    /// Jump to the next deadline and run it.
    pub const TIMEOUT: u8 = 3;
    /// `which: u8` — close / probe / delete the first Child SA of the first IKE SA.
    pub const COMMAND: u8 = 4;
    /// Number of operation codes.
    pub const COUNT: u8 = 5;
}

/// Runs one fuzz input against an endpoint in `role`.
pub fn run_endpoint(role: Role, data: &[u8]) {
    let ex = exchange();
    let start = Instant::now();
    let mut now = start;
    let (mut me, peer_ip, replay) = match role {
        Role::Responder => (
            Side::new(config_b(), SEED_B, ip(B_IP)),
            ip(A_IP),
            &ex.to_responder,
        ),
        Role::Initiator => (
            Side::new(config_a(), SEED_A, ip(A_IP)),
            ip(B_IP),
            &ex.to_initiator,
        ),
    };
    if role == Role::Initiator {
        me.ep
            .connect(
                now,
                config_a(),
                SocketAddr::new(me.ip, 500),
                SocketAddr::new(peer_ip, 500),
            )
            .expect("connect");
    }
    me.drain(now);
    let mut input = Input::new(data);
    let mut scratch = Vec::new();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % op::COUNT {
            op::DATAGRAM => {
                let flags = input.u8();
                let body = input.chunk();
                let local_port = if flags & 1 != 0 { 4500 } else { 500 };
                let remote_port = if flags & 8 != 0 { 4500 } else { 500 };
                scratch.clear();
                if flags & 2 != 0 {
                    scratch.extend_from_slice(&NON_ESP_MARKER);
                }
                scratch.extend_from_slice(body);
                let remote_ip = if flags & 4 != 0 { ip(C_IP) } else { peer_ip };
                me.ep.handle(
                    now,
                    Datagram {
                        local: SocketAddr::new(me.ip, local_port),
                        remote: SocketAddr::new(remote_ip, remote_port),
                        payload: &scratch,
                    },
                );
            }
            op::ADVANCE => {
                now += Duration::from_millis(u64::from(input.u16()) * 10);
                if me.ep.poll_timeout().is_some_and(|t| t <= now) {
                    me.ep.handle_timeout(now);
                }
            }
            op::REPLAY => {
                let (port, msg) = &replay[usize::from(input.u8()) % replay.len()];
                scratch.clear();
                scratch.extend_from_slice(msg);
                for _ in 0..input.u8() % 4 {
                    let pos = usize::from(input.u16());
                    let x = input.u8();
                    if !scratch.is_empty() {
                        let n = scratch.len();
                        scratch[pos % n] ^= x;
                    }
                }
                me.ep.handle(
                    now,
                    Datagram {
                        local: SocketAddr::new(me.ip, *port),
                        remote: SocketAddr::new(peer_ip, *port),
                        payload: &scratch,
                    },
                );
            }
            op::TIMEOUT => {
                if let Some(t) = me.ep.poll_timeout() {
                    // A deadline in the past is legitimate (it was due already).
                    now = now.max(t);
                    // Do not run forever in virtual time: a day is plenty.
                    if now - start > Duration::from_secs(86_400) {
                        break;
                    }
                    me.ep.handle_timeout(now);
                }
            }
            _ => {
                let which = input.u8();
                let first = me.ep.ike_sas().next();
                if let Some(sa) = first {
                    let _ = match which % 3 {
                        0 => me.ep.close(now, sa),
                        1 => me.ep.probe(now, sa),
                        _ => match me.ep.child_sas(sa).first() {
                            Some(&(c, _, _)) => me.ep.delete_child_sa(now, c),
                            None => Ok(()),
                        },
                    };
                }
            }
        }
        me.drain(now);
        if let Some(t) = me.ep.poll_timeout() {
            // Every deadline must be finite and not absurdly far (a stuck timer wheel
            // shows up as a deadline decades away, or as an overflow panic above).
            assert!(t.saturating_duration_since(now) < Duration::from_secs(10 * 86_400));
        }
    }
}

/// The IKE codec property: what decodes re-encodes, and the re-encoding decodes to the
/// same message and re-encodes to the same bytes.
pub fn check_message(data: &[u8]) {
    let Ok(mut msg) = Message::decode(data) else {
        return;
    };
    // Decoding keeps everything that affects the encoding except octets the RFC says to
    // ignore (RESERVED fields, the critical bit of known payloads), so the Length fields
    // must come out the same.
    let length = msg.header.length;
    msg.finalize()
        .unwrap_or_else(|e| panic!("decoded message does not re-encode: {e:?}\n{msg:?}"));
    assert_eq!(msg.header.length, length, "re-encoding changed the length");
    let bytes = msg
        .to_bytes()
        .unwrap_or_else(|e| panic!("decoded message does not re-encode: {e:?}\n{msg:?}"));
    let again = Message::decode(&bytes)
        .unwrap_or_else(|e| panic!("re-encoded message does not decode: {e:?}\n{msg:?}"));
    assert_eq!(again, msg, "decode(encode(m)) != m");
    assert_eq!(
        again.to_bytes().expect("encodes"),
        bytes,
        "encoding not canonical"
    );
}

/// Seed inputs for the endpoint harness in `role`, named.
pub fn endpoint_seeds(role: Role) -> Vec<(String, Vec<u8>)> {
    let ex = exchange();
    let replay = match role {
        Role::Responder => &ex.to_responder,
        Role::Initiator => &ex.to_initiator,
    };
    let mut seeds = Vec::new();
    // Replays of every prefix of the captured conversation.
    for k in 1..=replay.len() {
        let mut o = Output::default();
        for i in 0..k {
            o.u8(op::REPLAY).u8(i as u8).u8(0);
        }
        seeds.push((format!("replay-{k:02}"), o.data));
    }
    // The same as literal datagrams, so byte-level mutations apply to them directly.
    let mut o = Output::default();
    for (port, msg) in replay {
        let flags = if *port == 4500 { 1 | 8 } else { 0 };
        o.u8(op::DATAGRAM).u8(flags).chunk(msg);
    }
    seeds.push(("literal-all".into(), o.data));
    // Established, then silence: DPD, retransmissions, dead peer.
    let mut o = Output::default();
    for i in 0..replay.len().min(2) {
        o.u8(op::REPLAY).u8(i as u8).u8(0);
    }
    for _ in 0..8 {
        o.u8(op::TIMEOUT);
    }
    seeds.push(("established-then-timeouts".into(), o.data));
    // Local commands on the established SA.
    for which in 0..3u8 {
        let mut o = Output::default();
        for i in 0..replay.len().min(2) {
            o.u8(op::REPLAY).u8(i as u8).u8(0);
        }
        o.u8(op::COMMAND)
            .u8(which)
            .u8(op::ADVANCE)
            .u16(500)
            .u8(op::TIMEOUT);
        seeds.push((format!("command-{which}"), o.data));
    }
    seeds
}

/// Seed inputs for the codec harness: every captured message.
pub fn message_seeds() -> Vec<(String, Vec<u8>)> {
    let ex = exchange();
    let mut seeds = Vec::new();
    for (dir, list) in [("i", &ex.to_responder), ("r", &ex.to_initiator)] {
        for (n, (port, msg)) in list.iter().enumerate() {
            let body = if *port == 500 { &msg[..] } else { &msg[4..] };
            seeds.push((format!("{dir}-{n:02}"), body.to_vec()));
        }
    }
    seeds
}

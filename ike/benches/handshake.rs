//! IKE SA setup cost against the Diffie-Hellman it cannot avoid (perf-anchors §3(d)):
//! `cargo bench -p ike`.
//!
//! C = one X25519 key generation + one shared-secret computation, through the same
//! provider. A full handshake (IKE_SA_INIT + IKE_AUTH with one Child SA, PSK, AES-256-GCM,
//! PRF-HMAC-SHA256) costs each side one C plus symmetric work; the full loopback handshake
//! (initiator and responder on this core) is compared with 2C. Medians of several rounds.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ike::message::ProtocolId;
use ike::proposal::parse_proposals;
use ike::{ChildConfig, Datagram, Endpoint, EndpointConfig, Event, PeerConfig};
use ipsec_core::transform::KeId;
use ipsec_core::{CryptoProvider, RustCrypto, SecretBytes};

const ROUNDS: usize = 9;
const PER_ROUND: usize = 200;

fn peer(local: &str, remote: &str, lts: &str, rts: &str) -> Arc<PeerConfig> {
    Arc::new(PeerConfig {
        name: "bench".into(),
        local_id: ike::config::parse_identity(local).unwrap(),
        remote_id: Some(ike::config::parse_identity(remote).unwrap()),
        psk: SecretBytes::from_slice(b"benchmark pre-shared key of 32 o"),
        remote_addrs: vec![],
        ike_proposals: parse_proposals(ProtocolId::IKE, "aes256gcm16-prfsha256-x25519").unwrap(),
        force_encap: false,
        dpd_delay: None,
        initial_contact: false,
        rekey_time: None,
        life_time: None,
        children: vec![ChildConfig::new(
            "c",
            vec![lts.parse().unwrap()],
            vec![rts.parse().unwrap()],
            parse_proposals(ProtocolId::ESP, "aes256gcm16").unwrap(),
        )],
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One complete handshake between fresh SAs of two long-lived endpoints; returns the time
/// to establish (the Delete exchange that follows is not counted).
fn handshake(
    a: &mut Endpoint<RustCrypto>,
    b: &mut Endpoint<RustCrypto>,
    cfg: &Arc<PeerConfig>,
    buf: &mut Vec<u8>,
) -> Duration {
    let (la, lb): (SocketAddr, SocketAddr) = (
        "[fd00::1]:500".parse().unwrap(),
        "[fd00::2]:500".parse().unwrap(),
    );
    let now = Instant::now();
    let start = Instant::now();
    let h = a.connect(now, cfg.clone(), la, lb).unwrap();
    let mut children = 0;
    while children < 2 {
        let mut moved = false;
        while let Some(t) = a.poll_transmit(now, buf) {
            b.handle(
                now,
                Datagram {
                    local: t.remote,
                    remote: t.local,
                    payload: buf,
                },
            );
            moved = true;
        }
        while let Some(t) = b.poll_transmit(now, buf) {
            a.handle(
                now,
                Datagram {
                    local: t.remote,
                    remote: t.local,
                    payload: buf,
                },
            );
            moved = true;
        }
        for ep in [&mut *a, &mut *b] {
            while let Some(e) = ep.poll_event() {
                if matches!(e, Event::ChildSaEstablished(_)) {
                    children += 1;
                }
            }
        }
        assert!(moved || children == 2, "handshake stalled");
    }
    let took = start.elapsed();
    // Delete the IKE SA so the tables stay small.
    a.close(now, h).unwrap();
    while let Some(t) = a.poll_transmit(now, buf) {
        b.handle(
            now,
            Datagram {
                local: t.remote,
                remote: t.local,
                payload: buf,
            },
        );
        while let Some(t) = b.poll_transmit(now, buf) {
            a.handle(
                now,
                Datagram {
                    local: t.remote,
                    remote: t.local,
                    payload: buf,
                },
            );
        }
    }
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    assert_eq!(a.ike_sas().count() + b.ike_sas().count(), 0);
    took
}

fn main() {
    let provider = Arc::new(RustCrypto::new());
    let mut c_times = Vec::new();
    let mut hs_times = Vec::new();
    let ca = peer("fd00::1", "fd00::2", "fd01::/64", "fd02::/64");
    let cb = peer("fd00::2", "fd00::1", "fd02::/64", "fd01::/64");
    let mut a = Endpoint::new(
        Arc::new(EndpointConfig {
            peers: vec![ca.clone()],
            ..Default::default()
        }),
        provider.clone(),
    );
    let mut b = Endpoint::new(
        Arc::new(EndpointConfig {
            peers: vec![cb],
            ..Default::default()
        }),
        provider.clone(),
    );
    let mut buf = Vec::new();
    let peer_pub = provider
        .key_exchange(KeId::CURVE25519)
        .unwrap()
        .public_value()
        .to_vec();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            let kx = provider.key_exchange(KeId::CURVE25519).unwrap();
            black_box(kx.complete(&peer_pub).unwrap());
        }
        c_times.push(t.elapsed() / PER_ROUND as u32);
        let total: Duration = (0..PER_ROUND)
            .map(|_| handshake(&mut a, &mut b, &ca, &mut buf))
            .sum();
        hs_times.push(total / PER_ROUND as u32);
    }
    let c = median(c_times);
    let hs = median(hs_times);
    println!(
        "X25519 keygen + DH (C):                 {:>8.1} µs",
        c.as_secs_f64() * 1e6
    );
    println!(
        "full loopback handshake (both sides):   {:>8.1} µs  = {:.2} × 2C  ({:.0} handshakes/s/core)",
        hs.as_secs_f64() * 1e6,
        hs.as_secs_f64() / (2.0 * c.as_secs_f64()),
        1.0 / hs.as_secs_f64()
    );
}

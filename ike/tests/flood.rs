//! A flood of spoofed IKE_SA_INIT requests (RFC 7296 §2.6): the responder's state stays
//! bounded by the cookie threshold, every request beyond it gets a stateless COOKIE, and a
//! real initiator still connects; one address that does receive its answers holds a bounded
//! number of half-open SAs.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use common::*;
use ike::message::header::{ExchangeType, Flags, IkeHeader};
use ike::message::{KePayload, Message, NotifyType, Payload, ProtocolId};
use ike::{DropReason, EndpointConfig};
use ipsec_core::IkeSpi;
use ipsec_core::transform::KeId;

const FLOOD: u32 = 100_000;
const THRESHOLD: usize = 50;

/// An IKE_SA_INIT request as a spoofer would send it, with a valid X25519 value.
fn spoofed_request() -> Vec<u8> {
    let header = IkeHeader::new(
        IkeSpi([7; 8]),
        IkeSpi::ZERO,
        ExchangeType::IKE_SA_INIT,
        Flags::new(true, false),
        0,
    );
    let sa = ike::proposal::to_sa_payload(&ike_props("aes256gcm16-prfsha256-x25519"), &[]);
    let payloads = vec![
        Payload::Sa(sa),
        Payload::Ke(KePayload {
            group: KeId::CURVE25519,
            data: vec![9; 32],
        }),
        Payload::Nonce(vec![1; 32]),
    ];
    Message::new(header, payloads).unwrap().to_bytes().unwrap()
}

/// The default pair, B accepting IKE_SA_INIT from any address (as a public gateway does)
/// under `b_ep`.
fn gateway(seed: u64, b_ep: EndpointConfig) -> Pair {
    let p0 = Pair::new(seed, LinkConfig::default());
    let mut b_cfg = (*p0.b.config).clone();
    b_cfg.remote_addrs.clear();
    Pair::with_configs(
        seed,
        LinkConfig::default(),
        (*p0.a.config).clone(),
        b_cfg,
        EndpointConfig::default(),
        b_ep,
    )
}

#[test]
fn spoofed_init_flood_stays_bounded_and_a_real_initiator_connects() {
    let mut p = gateway(
        30,
        EndpointConfig {
            cookie_threshold: THRESHOLD,
            ..EndpointConfig::default()
        },
    );

    let template = spoofed_request();
    let local = p.b.addr(500);
    let now = p.now;
    let mut out = Vec::new();
    let mut cookies = 0u32;
    for i in 0..FLOOD {
        let mut msg = template.clone();
        msg[..4].copy_from_slice(&i.to_be_bytes());
        let src = IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            (i >> 16) as u16,
            i as u16,
        ));
        p.b.ike.handle(
            now,
            ike::Datagram {
                local,
                remote: SocketAddr::new(src, 500),
                payload: &msg,
            },
        );
        while p.b.ike.poll_transmit(now, &mut out).is_some() {
            let m = Message::decode(&out).unwrap();
            if m.notifies().any(|n| n.ty == NotifyType::COOKIE) {
                cookies += 1;
            }
        }
        // Bounded at every moment, not only at the end.
        assert!(
            p.b.ike.ike_sas().count() <= THRESHOLD,
            "half-open SAs grew to {}",
            p.b.ike.ike_sas().count()
        );
    }
    assert_eq!(p.b.ike.ike_sas().count(), THRESHOLD);
    assert_eq!(cookies, FLOOD - THRESHOLD as u32);
    assert_eq!(
        p.b.ike.stats().cookies_sent,
        u64::from(FLOOD) - THRESHOLD as u64
    );
    assert_eq!(
        p.b.ike.stats().dropped(DropReason::CookieRequired),
        u64::from(FLOOD) - THRESHOLD as u64
    );

    // The real initiator is asked for a cookie, echoes it, and gets through.
    p.connect();
    p.drive_until(100, Pair::established);
    assert!(p.b.ike.stats().cookies_sent > u64::from(FLOOD) - THRESHOLD as u64);
    let _ = ProtocolId::IKE;
}

/// One address (that receives its answers, so cookies do not stop it) holds at most
/// `half_open_per_ip` half-open SAs; others are unaffected, and the slots come back when
/// the half-open SAs time out.
#[test]
fn one_address_holds_a_bounded_number_of_half_open_sas() {
    let b_ep = EndpointConfig {
        cookie_threshold: 1000,
        ..EndpointConfig::default()
    };
    let (per_ip, timeout) = (b_ep.half_open_per_ip, b_ep.half_open_timeout);
    let mut p = gateway(31, b_ep);
    let template = spoofed_request();
    let local = p.b.addr(500);
    let mut out = Vec::new();
    let mut send = |p: &mut Pair, i: u32, src: &str| -> bool {
        let mut msg = template.clone();
        msg[..4].copy_from_slice(&i.to_be_bytes());
        let now = p.now;
        p.b.ike.handle(
            now,
            ike::Datagram {
                local,
                remote: SocketAddr::new(src.parse().unwrap(), 500),
                payload: &msg,
            },
        );
        let mut answered = false;
        while p.b.ike.poll_transmit(now, &mut out).is_some() {
            answered = true;
        }
        answered
    };
    let answered: Vec<bool> = (0..8).map(|i| send(&mut p, i, "2001:db8::66")).collect();
    assert_eq!(
        answered.iter().filter(|a| **a).count(),
        per_ip,
        "{answered:?}"
    );
    assert!(answered[..per_ip].iter().all(|a| *a));
    assert_eq!(p.b.ike.stats().dropped(DropReason::HalfOpenLimit), 3);
    assert!(
        send(&mut p, 100, "2001:db8::77"),
        "another address is answered"
    );
    assert_eq!(p.b.ike.ike_sas().count(), per_ip + 1);
    // The half-open SAs time out; the address may try again.
    p.now += timeout + std::time::Duration::from_secs(1);
    let now = p.now;
    p.b.ike.handle_timeout(now);
    assert_eq!(p.b.ike.ike_sas().count(), 0);
    assert!(send(&mut p, 200, "2001:db8::66"));
}

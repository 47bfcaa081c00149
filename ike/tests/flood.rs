//! A flood of spoofed IKE_SA_INIT requests (RFC 7296 §2.6): the responder's state stays
//! bounded by the cookie threshold, every request beyond it gets a stateless COOKIE, and a
//! real initiator still connects.

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

#[test]
fn spoofed_init_flood_stays_bounded_and_a_real_initiator_connects() {
    let p0 = Pair::new(30, LinkConfig::default());
    let mut b_cfg = (*p0.b.config).clone();
    b_cfg.remote_addrs.clear(); // accept any address, as a public gateway does
    let b_ep = EndpointConfig {
        cookie_threshold: THRESHOLD,
        ..EndpointConfig::default()
    };
    let mut p = Pair::with_configs(
        30,
        LinkConfig::default(),
        (*p0.a.config).clone(),
        b_cfg,
        EndpointConfig::default(),
        b_ep,
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

//! Responder hardening found in review: policy of the authenticating connection, KE length
//! before Diffie-Hellman work, Message ID 0 for IKE_SA_INIT, answers to a retransmission's
//! source address.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use ike::message::header::{ExchangeType, Flags, IkeHeader};
use ike::message::{KePayload, Message, NotifyType, Payload};
use ike::{CloseReason, DropReason, EndpointConfig};
use ipsec_core::IkeSpi;
use ipsec_core::transform::KeId;

fn init_request(message_id: u32, ke_len: usize) -> Vec<u8> {
    let header = IkeHeader::new(
        IkeSpi([3; 8]),
        IkeSpi::ZERO,
        ExchangeType::IKE_SA_INIT,
        Flags::new(true, false),
        message_id,
    );
    let payloads = vec![
        Payload::Sa(ike::proposal::to_sa_payload(
            &ike_props("aes256gcm16-prfsha256-x25519"),
            &[],
        )),
        Payload::Ke(KePayload {
            group: KeId::CURVE25519,
            data: vec![9; ke_len],
        }),
        Payload::Nonce(vec![1; 32]),
    ];
    Message::new(header, payloads).unwrap().to_bytes().unwrap()
}

#[test]
fn ke_of_the_wrong_length_is_refused_before_any_state() {
    let mut p = Pair::new(70, LinkConfig::default());
    let (local, remote) = (p.b.addr(500), p.a.addr(500));
    let now = p.now;
    p.b.ike.handle(
        now,
        ike::Datagram {
            local,
            remote,
            payload: &init_request(0, 31),
        },
    );
    let mut out = Vec::new();
    assert!(p.b.ike.poll_transmit(now, &mut out).is_some());
    let m = Message::decode(&out).unwrap();
    assert!(m.notifies().any(|n| n.ty == NotifyType::INVALID_SYNTAX));
    assert_eq!(p.b.ike.ike_sas().count(), 0);
    // Message ID must be 0 in IKE_SA_INIT (§3.1): dropped without an answer.
    p.b.ike.handle(
        now,
        ike::Datagram {
            local,
            remote,
            payload: &init_request(1, 32),
        },
    );
    assert!(p.b.ike.poll_transmit(now, &mut out).is_none());
    assert_eq!(p.b.ike.stats().dropped(DropReason::Malformed), 2);
    // The well-formed request creates a half-open SA.
    p.b.ike.handle(
        now,
        ike::Datagram {
            local,
            remote,
            payload: &init_request(0, 32),
        },
    );
    assert_eq!(p.b.ike.ike_sas().count(), 1);
}

#[test]
fn the_authenticating_connection_must_allow_the_negotiated_suite() {
    // B has two connections: "any" (any identity, allows aes128gcm16, another PSK) first,
    // then "strict" (A's identity and PSK, aes256gcm16 only). A proposes aes128gcm16 with
    // the strict connection's PSK: IKE_SA_INIT picks the suite under "any", and IKE_AUTH
    // must not then accept A under "strict", whose policy never allowed that suite.
    let p0 = Pair::new(71, LinkConfig::default());
    let mut a = (*p0.a.config).clone();
    a.ike_proposals = ike_props("aes128gcm16-prfsha256-x25519");
    let strict = (*p0.b.config).clone();
    let mut any = strict.clone();
    any.name = "any".into();
    any.remote_id = None;
    any.psk = ipsec_core::SecretBytes::from_slice(b"the other connection's own long psk");
    any.ike_proposals = ike_props("aes128gcm16-prfsha256-x25519");
    let b_ep = EndpointConfig {
        peers: vec![std::sync::Arc::new(any)],
        ..EndpointConfig::default()
    };
    let mut p = Pair::with_configs(
        71,
        LinkConfig::default(),
        a,
        strict,
        EndpointConfig::default(),
        b_ep,
    );
    // Pair::with_configs puts B's own config last in its endpoint list, after "any".
    p.connect();
    p.drive_until(100, |p| !p.a.closed().is_empty());
    assert_eq!(p.a.closed(), vec![CloseReason::AuthenticationFailed]);
    assert!(p.b.established().is_empty());
}

#[test]
fn a_retransmitted_request_is_answered_at_its_new_source() {
    let mut p = Pair::new(72, LinkConfig::default());
    let h = p.connect();
    p.drive_until(100, Pair::established);
    p.a.ike.probe(p.now, h).unwrap();
    let mut req = Vec::new();
    let t = p.a.ike.poll_transmit(p.now, &mut req).unwrap();
    let now = p.now + Duration::from_millis(1);
    p.b.ike.handle(
        now,
        ike::Datagram {
            local: t.remote,
            remote: t.local,
            payload: &req,
        },
    );
    let mut out = Vec::new();
    assert!(p.b.ike.poll_transmit(now, &mut out).is_some());
    // The same request again, from a port a NAT remapped: the cached answer goes there.
    let moved = SocketAddr::new(t.local.ip(), 31_000);
    p.b.ike.handle(
        now,
        ike::Datagram {
            local: t.remote,
            remote: moved,
            payload: &req,
        },
    );
    let t2 =
        p.b.ike
            .poll_transmit(now, &mut out)
            .expect("the cached response");
    assert_eq!(t2.remote, moved);
    assert_eq!(p.b.ike.stats().responses_resent, 1);
}

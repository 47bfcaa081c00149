//! What happens when a rekey fails (RFC 7296 §2.8, §1.3.2, §1.2): the IKE SA rekey retried
//! with the group of INVALID_KE_PAYLOAD, failed IKE and Child SA rekeys retried after
//! `rekey_retry`, and the IKE SA hard lifetime ending an IKE SA that could not be rekeyed.
//!
//! The failures are made by a man in the middle holding the IKE SA keys (from
//! `Endpoint::ike_sa_keys`): it keeps A's request from B, hands B an empty INFORMATIONAL
//! with the same Message ID instead (so that both windows stay in step, as after a real
//! failed exchange), and answers A with the error notify B could have sent.

mod common;

use std::time::Duration;

use common::*;
use ike::message::header::{ExchangeType, Flags, IkeHeader};
use ike::message::{NotifyPayload, NotifyType, OpenedMessage, Payload, SkCipher, SkTransform};
use ike::{CloseReason, Datagram, EndpointConfig, Event};
use ipsec_core::RustCrypto;
use ipsec_core::transform::{EncrId, KeId};

const TICK: Duration = Duration::from_millis(500);

/// A's IKE SA soft and hard lifetimes, and its `rekey_retry`.
fn ike_lifetimes(rekey: u64, life: Option<u64>) -> (PeerLifetimes, EndpointConfig) {
    (
        (
            Some(Duration::from_secs(rekey)),
            life.map(Duration::from_secs),
        ),
        EndpointConfig {
            rekey_retry: Duration::from_secs(30),
            ..EndpointConfig::default()
        },
    )
}

type PeerLifetimes = (Option<Duration>, Option<Duration>);

/// A pair whose IKE SAs offer two groups, established, with traffic, A's IKE datagrams held.
fn pair(
    seed: u64,
    (lifetimes, ep_a): (PeerLifetimes, EndpointConfig),
    child_rekey: Option<Duration>,
) -> Pair {
    let (a_ip, b_ip) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
    let mut a = peer_config("a", a_ip, b_ip, "fd01::/64", "fd02::/64");
    let mut b = peer_config("b", b_ip, a_ip, "fd02::/64", "fd01::/64");
    (a.rekey_time, a.life_time) = lifetimes;
    for c in [&mut a, &mut b] {
        c.ike_proposals = ike_props("aes256gcm16-prfsha256-x25519-ecp256");
    }
    if let Some(t) = child_rekey {
        a.children[0].rekey_time = Some(t);
        a.children[0].life_time = Some(t * 4);
    }
    let mut p = Pair::with_configs(
        seed,
        LinkConfig::default(),
        a,
        b,
        ep_a,
        EndpointConfig::default(),
    );
    p.connect();
    p.drive_until(100, Pair::established);
    p.traffic = Some(TICK);
    p.run_for(Duration::from_secs(1));
    p.hold_ike = Some(Side::A);
    p
}

/// The SK ciphers of A's current IKE SA: (initiator's messages, responder's messages).
/// Their IV counters start far above the endpoints' own, so no nonce repeats.
fn ciphers(p: &Pair) -> (IkeHeader, SkCipher<RustCrypto>, SkCipher<RustCrypto>) {
    let h = p.a.current_ike();
    let (spi_i, spi_r, keys) = p.a.ike.ike_sa_keys(h).expect("keys");
    let t = keys.suite.encr.transform();
    let transform = SkTransform::from_negotiated(EncrId(t.id), t.key_length, keys.suite.integ)
        .expect("an SK transform");
    let provider = RustCrypto::with_seed(7);
    let mut i = SkCipher::new(&provider, transform, &keys.sk_ei, &keys.sk_ai).unwrap();
    let mut r = SkCipher::new(&provider, transform, &keys.sk_er, &keys.sk_ar).unwrap();
    i.set_iv_counter(1 << 40).unwrap();
    r.set_iv_counter(1 << 40).unwrap();
    let header = IkeHeader::new(
        spi_i,
        spi_r,
        ExchangeType::INFORMATIONAL,
        Flags::new(true, false),
        0,
    );
    (header, i, r)
}

/// Forwards the held datagrams of A; returns the first CREATE_CHILD_SA request (opened,
/// with its datagram) instead of forwarding it, if `take` says so for its payloads.
fn forward_held(
    p: &mut Pair,
    take: impl Fn(&[Payload]) -> bool,
) -> Option<(OpenedMessage, InFlight)> {
    // Once A's IKE SA is gone there is nothing to answer for B.
    let i =
        p.a.ike
            .ike_sa_keys(p.a.current_ike())
            .is_some()
            .then(|| ciphers(p).1);
    let mut taken = None;
    for d in std::mem::take(&mut p.held) {
        if taken.is_none()
            && let Some(Ok(m)) = i.as_ref().map(|i| i.open(&d.payload))
            && m.header.exchange_type == ExchangeType::CREATE_CHILD_SA
            && !m.header.flags.response()
            && take(&m.payloads)
        {
            taken = Some((m, d));
            continue;
        }
        let now = p.now;
        p.link.send(now, d);
    }
    taken
}

/// Runs until A sends a CREATE_CHILD_SA request `take` accepts (forwarding everything
/// else), for at most `limit`.
fn run_until_request(
    p: &mut Pair,
    limit: Duration,
    take: impl Fn(&[Payload]) -> bool + Copy,
) -> Option<(OpenedMessage, InFlight)> {
    let end = p.now + limit;
    while p.now < end {
        if !p.step_until(Some(end)) {
            break;
        }
        if let Some(x) = forward_held(p, take) {
            return Some(x);
        }
    }
    None
}

/// Answers A's request `req` with `answer` in B's name; B sees an empty INFORMATIONAL with
/// the same Message ID and its answer is dropped.
fn answer_for_b(p: &mut Pair, req: &OpenedMessage, d: &InFlight, answer: Vec<Payload>) {
    let (mut hdr, mut i, mut r) = ciphers(p);
    let msg_id = req.header.message_id;
    hdr.message_id = msg_id;
    let stand_in = i.seal_to_vec(&hdr, &[]).unwrap();
    let now = p.now;
    p.b.ike.handle(
        now,
        Datagram {
            local: d.dst,
            remote: d.src,
            payload: &stand_in,
        },
    );
    let mut buf = Vec::new();
    let mut answered = 0;
    while p.b.ike.poll_transmit(now, &mut buf).is_some() {
        answered += 1;
    }
    assert_eq!(answered, 1, "B answers the stand-in request once");
    let resp = IkeHeader::new(
        hdr.spi_i,
        hdr.spi_r,
        ExchangeType::CREATE_CHILD_SA,
        Flags::new(false, true),
        msg_id,
    );
    let forged = r.seal_to_vec(&resp, &answer).unwrap();
    p.a.ike.handle(
        now,
        Datagram {
            local: d.src,
            remote: d.dst,
            payload: &forged,
        },
    );
}

fn is_ike_rekey(payloads: &[Payload]) -> bool {
    !payloads.iter().any(|x| matches!(x, Payload::TsI(_)))
}

fn is_child_create(payloads: &[Payload]) -> bool {
    payloads.iter().any(|x| matches!(x, Payload::TsI(_)))
}

fn ke_group(payloads: &[Payload]) -> Option<KeId> {
    payloads.iter().find_map(|x| match x {
        Payload::Ke(k) => Some(k.group),
        _ => None,
    })
}

fn notify(ty: NotifyType) -> Vec<Payload> {
    vec![Payload::Notify(NotifyPayload::new(ty, vec![]))]
}

/// Lets the held datagrams go and checks that both ends agree, with no ESP lost.
fn release_and_check(p: &mut Pair, what: &str) {
    p.hold_ike = None;
    for d in std::mem::take(&mut p.held) {
        let now = p.now;
        p.link.send(now, d);
    }
    p.run_for(Duration::from_secs(60));
    p.assert_healthy(what);
}

/// Asserts that a retry came `rekey_retry` (30 s) less at most 10 % after `failed_at`.
fn assert_retried_after_rekey_retry(p: &Pair, failed_at: std::time::Instant) {
    let after = p.now - failed_at;
    assert!(
        (Duration::from_secs(27)..=Duration::from_secs(30)).contains(&after),
        "retried after {after:?}"
    );
}

#[test]
fn ike_rekey_after_invalid_ke_uses_the_requested_group() {
    let mut p = pair(
        link::seed_from_env(2100),
        ((None, None), EndpointConfig::default()),
        None,
    );
    let old = p.a.current_ike();
    let negotiated = p.a.ike.ike_sa_keys(old).unwrap().2.suite.ke;
    assert_eq!(negotiated, KeId::CURVE25519);
    p.a.ike.rekey_ike_sa(p.now, old).unwrap();
    let (req, d) = run_until_request(&mut p, Duration::from_secs(5), is_ike_rekey).expect("rekey");
    assert_eq!(ke_group(&req.payloads), Some(KeId::CURVE25519));
    answer_for_b(
        &mut p,
        &req,
        &d,
        vec![Payload::Notify(NotifyPayload::invalid_ke(KeId::ECP_256))],
    );
    // At once, with the group B asked for, under the next Message ID.
    let (again, d) =
        run_until_request(&mut p, Duration::from_secs(1), is_ike_rekey).expect("a second try");
    assert_eq!(ke_group(&again.payloads), Some(KeId::ECP_256));
    assert_eq!(again.header.message_id, req.header.message_id + 1);
    let now = p.now;
    p.link.send(now, d);
    release_and_check(&mut p, "IKE rekey after INVALID_KE");
    assert_eq!((p.a.ike_rekeys, p.b.ike_rekeys), (1, 1));
    let new = p.a.current_ike();
    assert_ne!(new, old);
    assert_eq!(p.a.ike.ike_sa_keys(new).unwrap().2.suite.ke, KeId::ECP_256);
    assert!(p.a.closed().is_empty() && p.b.closed().is_empty());

    // A group none of our proposals has is not tried: the rekey fails, the SA stays.
    p.hold_ike = Some(Side::A);
    p.a.ike.rekey_ike_sa(p.now, new).unwrap();
    let (req, d) = run_until_request(&mut p, Duration::from_secs(5), is_ike_rekey).unwrap();
    answer_for_b(
        &mut p,
        &req,
        &d,
        vec![Payload::Notify(NotifyPayload::invalid_ke(KeId::MODP_2048))],
    );
    assert!(run_until_request(&mut p, Duration::from_secs(5), is_ike_rekey).is_none());
    assert_eq!(p.a.current_ike(), new);
    release_and_check(&mut p, "INVALID_KE naming a group we do not offer");
}

#[test]
fn failed_ike_rekey_is_retried_after_rekey_retry() {
    let ep = ike_lifetimes(3600, None);
    let mut p = pair(link::seed_from_env(2200), ep, None);
    let old = p.a.current_ike();
    p.a.ike.rekey_ike_sa(p.now, old).unwrap();
    let (req, d) = run_until_request(&mut p, Duration::from_secs(5), is_ike_rekey).unwrap();
    let failed_at = p.now;
    answer_for_b(&mut p, &req, &d, notify(NotifyType::NO_PROPOSAL_CHOSEN));
    // Not before 27 s (30 s less at most 10 %), not after 30 s.
    assert!(run_until_request(&mut p, Duration::from_secs(26), is_ike_rekey).is_none());
    assert_eq!(p.a.current_ike(), old);
    let (_, d) = run_until_request(&mut p, Duration::from_secs(5), is_ike_rekey).expect("retry");
    assert_retried_after_rekey_retry(&p, failed_at);
    let now = p.now;
    p.link.send(now, d);
    release_and_check(&mut p, "IKE rekey retried");
    assert_eq!((p.a.ike_rekeys, p.b.ike_rekeys), (1, 1));
    assert!(p.a.closed().is_empty() && p.b.closed().is_empty());
}

#[test]
fn ike_sa_hard_lifetime_ends_an_sa_whose_rekeys_fail() {
    let ep = ike_lifetimes(60, Some(150));
    let mut p = pair(link::seed_from_env(2300), ep, None);
    let start = p.now - Duration::from_secs(1);
    let mut attempts = Vec::new();
    while let Some((req, d)) = run_until_request(&mut p, Duration::from_secs(200), is_ike_rekey) {
        attempts.push((p.now - start).as_secs());
        answer_for_b(&mut p, &req, &d, notify(NotifyType::NO_PROPOSAL_CHOSEN));
    }
    // Soft lifetime at 54–60 s, then every 27–30 s while that is before 150 s.
    assert!(
        (3..=4).contains(&attempts.len()) && (54..=61).contains(&attempts[0]),
        "rekey attempts at {attempts:?} s"
    );
    assert_eq!(p.a.closed(), vec![CloseReason::Expired]);
    assert_eq!(p.b.closed(), vec![CloseReason::DeletedByPeer]);
    assert!(p.a.installed.is_empty() && p.b.installed.is_empty());
    assert_eq!(p.a.ike.ike_sas().count() + p.b.ike.ike_sas().count(), 0);
    let closed_at =
        p.a.events
            .iter()
            .position(|e| matches!(e, Event::IkeSaClosed { .. }));
    assert!(closed_at.is_some());
}

#[test]
fn ike_sa_lifetimes_restart_with_each_rekey() {
    let ep = ike_lifetimes(60, Some(90));
    let mut p = pair(link::seed_from_env(2400), ep, None);
    p.hold_ike = None;
    p.run_for(Duration::from_secs(1000));
    // One rekey per 54–60 s, and the hard lifetime of each new IKE SA starts afresh.
    assert!(
        (16..=19).contains(&p.a.ike_rekeys),
        "{} IKE rekeys",
        p.a.ike_rekeys
    );
    assert!(p.a.closed().is_empty() && p.b.closed().is_empty());
    release_and_check(&mut p, "1000 s of IKE rekeys");
}

#[test]
fn failed_child_rekey_is_retried_before_its_hard_lifetime() {
    let mut p = pair(
        link::seed_from_env(2500),
        ((None, None), EndpointConfig::default()),
        Some(Duration::from_secs(100)),
    );
    let before = p.a.events.len();
    let (req, d) =
        run_until_request(&mut p, Duration::from_secs(120), is_child_create).expect("rekey");
    let failed_at = p.now;
    answer_for_b(&mut p, &req, &d, notify(NotifyType::NO_PROPOSAL_CHOSEN));
    p.run_for(Duration::from_millis(10));
    assert!(
        p.a.events[before..]
            .iter()
            .any(|e| matches!(e, Event::ChildSaFailed { .. })),
        "the failure is reported"
    );
    let (_, d) =
        run_until_request(&mut p, Duration::from_secs(40), is_child_create).expect("a retry");
    assert_retried_after_rekey_retry(&p, failed_at);
    let now = p.now;
    p.link.send(now, d);
    release_and_check(&mut p, "Child SA rekey retried");
    assert_eq!(p.a.child_rekeys, 1);
    assert_eq!(
        p.a.deleted_children(),
        1,
        "only the replaced Child SA is gone"
    );
}

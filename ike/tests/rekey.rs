//! CREATE_CHILD_SA against itself (RFC 7296 §1.3, §2.8, §2.25): additional Child SAs,
//! Child SA and IKE SA rekeys, their collisions and races with Delete, under the loss of
//! each message position, with ESP traffic flowing over a lossless path all along: every
//! ESP drop would be the state machine's fault. Set IPSEC_TEST_SEED to replay a run.

mod common;

use std::time::Duration;

use common::*;
use ike::{ChildConfig, ChildSaId, EndpointConfig, Event, IkeSaHandle};

const TICK: Duration = Duration::from_millis(200);

/// Established pair with traffic every `TICK`, settled.
fn pair(seed: u64) -> (Pair, IkeSaHandle, IkeSaHandle) {
    let mut p = Pair::new(seed, LinkConfig::default());
    let h = p.connect();
    p.drive_until(100, Pair::established);
    p.traffic = Some(TICK);
    p.run_for(Duration::from_secs(1));
    let hb = p.b.established()[0];
    (p, h, hb)
}

fn only_child(p: &Peer) -> ChildSaId {
    assert_eq!(p.installed.len(), 1, "{}: {:?}", p.name, p.installed.keys());
    *p.installed.keys().next().unwrap()
}

/// Settles (all retransmissions done), then checks every invariant.
fn settle_and_check(p: &mut Pair, what: &str) {
    // Dense traffic while the exchanges (and a first retransmission) run, sparse after.
    let tick = p.traffic;
    p.run_for(Duration::from_secs(10));
    p.traffic = tick.map(|_| Duration::from_secs(5));
    p.run_for(Duration::from_secs(390));
    p.traffic = tick;
    p.assert_healthy(what);
    let (sent, delivered) = p.esp_totals();
    // What is still on the wire is at most one packet each way.
    assert!(
        sent - delivered <= 2,
        "{what}: sent {sent}, delivered {delivered}"
    );
    assert!(p.a.closed().is_empty() && p.b.closed().is_empty(), "{what}");
}

/// The events of `p` after index `from` that concern Child SAs, in a compact form.
fn child_events(p: &Peer, from: usize) -> Vec<String> {
    p.events[from..]
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaEstablished(c) => {
                Some(format!("est {} r{:?}", c.id.0, c.replaces.map(|r| r.0)))
            }
            Event::ChildSaInboundReady { id, replaces, .. } => {
                Some(format!("in {} r{}", id.0, replaces.0))
            }
            Event::ChildSaDeleted { id, .. } => Some(format!("del {}", id.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn child_rekey_is_make_before_break() {
    let (mut p, _, _) = pair(link::seed_from_env(500));
    let old_a = only_child(&p.a);
    let old_b = only_child(&p.b);
    let (ea, eb) = (p.a.events.len(), p.b.events.len());
    p.a.ike.rekey_child_sa(p.now, old_a).unwrap();
    settle_and_check(&mut p, "rekey");
    let new_a = only_child(&p.a);
    let new_b = only_child(&p.b);
    assert_ne!(new_a, old_a);
    // Initiator: established (replacing) first, the old one deleted when the peer agreed.
    assert_eq!(
        child_events(&p.a, ea),
        vec![
            format!("est {} r{:?}", new_a.0, Some(old_a.0)),
            format!("del {}", old_a.0)
        ]
    );
    // Responder: inbound first, then the outbound once the initiator deleted the old SA.
    assert_eq!(
        child_events(&p.b, eb),
        vec![
            format!("in {} r{}", new_b.0, old_b.0),
            format!("est {} r{:?}", new_b.0, Some(old_b.0)),
            format!("del {}", old_b.0)
        ]
    );
    // Same selectors and keys agree.
    let (ia, ib) = (&p.a.infos[&new_a], &p.b.infos[&new_b]);
    assert_eq!(ia.ts_local, vec![ts("fd01::/64")]);
    assert_eq!(ia.outbound.transform, ib.inbound.transform);
    assert_eq!(ia.inbound.spi, ib.outbound.spi);
    // A rekey of a rekeyed (gone) Child SA is a caller mistake.
    assert_eq!(
        p.a.ike.rekey_child_sa(p.now, old_a),
        Err(ike::CommandError::UnknownChildSa)
    );
}

#[test]
fn child_rekey_survives_the_loss_of_each_message() {
    // Messages 1-4 set up the IKE SA; 5-8 are the rekey and the Delete of the old SA.
    for side in [Side::A, Side::B] {
        for nth in 5..=8u64 {
            let (mut p, _, _) = pair(link::seed_from_env(510 + nth));
            p.link.drop_nth = vec![p.link.sent + nth - 4];
            let old = only_child(p.peer(side));
            let now = p.now;
            p.peer(side).ike.rekey_child_sa(now, old).unwrap();
            settle_and_check(&mut p, &format!("{side:?} loses message {nth}"));
            assert_ne!(only_child(p.peer(side)), old);
            assert_eq!(p.a.child_rekeys, 1);
            assert_eq!(p.b.child_rekeys, 1);
        }
    }
}

#[test]
fn simultaneous_child_rekeys_leave_one_child_sa() {
    // Both rekey at the same instant; with no loss, then with each message lost, then
    // duplicated.
    let mut ran = 0;
    for variant in 0..=24u64 {
        let (mut p, _, _) = pair(link::seed_from_env(600 + variant));
        let base = p.link.sent;
        match variant {
            0 => {}
            1..=12 => p.link.drop_nth = vec![base + variant],
            _ => p.link.dup_nth = vec![base + variant - 12],
        }
        let (ca, cb) = (only_child(&p.a), only_child(&p.b));
        p.a.ike.rekey_child_sa(p.now, ca).unwrap();
        p.b.ike.rekey_child_sa(p.now, cb).unwrap();
        settle_and_check(&mut p, &format!("variant {variant}"));
        assert_ne!(only_child(&p.a), ca, "variant {variant}");
        assert_ne!(only_child(&p.b), cb, "variant {variant}");
        // Each side reported exactly one replacement in use.
        assert_eq!(p.a.child_rekeys, 1, "variant {variant}");
        assert_eq!(p.b.child_rekeys, 1, "variant {variant}");
        ran += 1;
    }
    assert_eq!(ran, 25);
}

#[test]
fn lowest_nonce_decides_a_child_rekey_collision() {
    // Over many seeds both outcomes occur; either way one Child SA survives, and the
    // loser's own SA is never reported to the caller by its creator.
    let mut a_won = 0;
    let mut b_won = 0;
    for seed in 0..16 {
        let (mut p, _, _) = pair(link::seed_from_env(700 + seed));
        let (ca, cb) = (only_child(&p.a), only_child(&p.b));
        let ea = p.a.events.len();
        p.a.ike.rekey_child_sa(p.now, ca).unwrap();
        p.b.ike.rekey_child_sa(p.now, cb).unwrap();
        settle_and_check(&mut p, &format!("seed {seed}"));
        // If A's exchange survived, A reports it established without an inbound-first
        // event; if B's did, A learned it as responder first.
        let ev = child_events(&p.a, ea);
        let est = ev
            .iter()
            .find(|e| e.starts_with("est"))
            .expect("established");
        let id = est.split(' ').nth(1).unwrap();
        if ev.iter().any(|e| e.starts_with(&format!("in {id} "))) {
            b_won += 1;
        } else {
            a_won += 1;
        }
    }
    assert!(a_won > 0 && b_won > 0, "A won {a_won}, B won {b_won}");
}

#[test]
fn rekey_against_delete() {
    // A rekeys while B deletes the same Child SA, with each message lost in turn: both
    // end with no Child SA (or, never, with different ones).
    for variant in 0..=10u64 {
        let (mut p, ha, _) = pair(link::seed_from_env(800 + variant));
        p.traffic = None;
        if variant > 0 {
            p.link.drop_nth = vec![p.link.sent + variant];
        }
        let (ca, cb) = (only_child(&p.a), only_child(&p.b));
        p.a.ike.rekey_child_sa(p.now, ca).unwrap();
        p.b.ike.delete_child_sa(p.now, cb).unwrap();
        settle_and_check(&mut p, &format!("variant {variant}"));
        assert!(
            p.a.installed.is_empty(),
            "variant {variant}: {:?}",
            p.a.installed
        );
        assert!(p.b.installed.is_empty(), "variant {variant}");
        assert_eq!(p.a.ike.child_sas(ha).len(), 0, "variant {variant}");
        // The IKE SA carries on: a new Child SA can be made.
        let cfg = p.a.config.children[0].clone();
        let now = p.now;
        p.a.ike
            .create_child_sa(now, p.a.current_ike(), cfg)
            .unwrap();
        p.run_for(Duration::from_secs(30));
        assert!(
            p.converged().is_ok() && p.a.installed.len() == 1,
            "variant {variant}"
        );
    }
}

#[test]
fn delete_against_rekey_from_the_other_side() {
    // B rekeys while A deletes; A's delete also removes a replacement B made meanwhile.
    for variant in 0..=10u64 {
        let (mut p, _, _) = pair(link::seed_from_env(820 + variant));
        p.traffic = None;
        if variant > 0 {
            p.link.drop_nth = vec![p.link.sent + variant];
        }
        let (ca, cb) = (only_child(&p.a), only_child(&p.b));
        p.b.ike.rekey_child_sa(p.now, cb).unwrap();
        p.run_for(Duration::from_millis(15 * (variant % 3)));
        if p.a.ike.delete_child_sa(p.now, ca).is_err() {
            // Too late: the rekey is done, the replacement is what to delete.
            let now = p.now;
            let c = only_child(&p.a);
            p.a.ike.delete_child_sa(now, c).unwrap();
        }
        settle_and_check(&mut p, &format!("variant {variant}"));
        assert!(
            p.a.installed.is_empty(),
            "variant {variant}: {:?}",
            p.a.installed
        );
        assert!(
            p.b.installed.is_empty(),
            "variant {variant}: {:?}",
            p.b.installed
        );
    }
}

#[test]
fn ike_sa_rekey_moves_the_child_sas() {
    let (mut p, ha, hb) = pair(link::seed_from_env(900));
    let (ca, cb) = (only_child(&p.a), only_child(&p.b));
    let ea = p.a.events.len();
    p.a.ike.rekey_ike_sa(p.now, ha).unwrap();
    settle_and_check(&mut p, "IKE rekey");
    let (na, nb) = (p.a.current_ike(), p.b.current_ike());
    assert_ne!(na, ha);
    assert_ne!(nb, hb);
    assert_eq!(p.a.ike_rekeys, 1);
    assert_eq!(p.b.ike_rekeys, 1);
    // Children moved, not re-made.
    assert_eq!(only_child(&p.a), ca);
    assert_eq!(only_child(&p.b), cb);
    assert!(child_events(&p.a, ea).is_empty());
    assert_eq!(p.a.ike.ike_sas().collect::<Vec<_>>(), vec![na]);
    assert_eq!(p.b.ike.ike_sas().collect::<Vec<_>>(), vec![nb]);
    assert_eq!(p.a.ike.child_sas(na).len(), 1);
    assert!(p.a.closed().is_empty() && p.b.closed().is_empty());
    // The new IKE SA works: rekey the child on it, rekey it again, then close it.
    p.b.ike.rekey_child_sa(p.now, cb).unwrap();
    settle_and_check(&mut p, "child rekey on the new IKE SA");
    p.b.ike.rekey_ike_sa(p.now, nb).unwrap();
    settle_and_check(&mut p, "second IKE rekey");
    assert_eq!(p.a.ike_rekeys, 2);
    let na = p.a.current_ike();
    p.a.ike.close(p.now, na).unwrap();
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.a.closed(), vec![ike::CloseReason::LocallyClosed]);
    assert_eq!(p.b.closed(), vec![ike::CloseReason::DeletedByPeer]);
    assert_eq!(p.a.ike.ike_sas().count() + p.b.ike.ike_sas().count(), 0);
}

#[test]
fn simultaneous_ike_sa_rekeys() {
    for variant in 0..=16u64 {
        let (mut p, ha, hb) = pair(link::seed_from_env(1000 + variant));
        let base = p.link.sent;
        match variant {
            0 => {}
            1..=10 => p.link.drop_nth = vec![base + variant],
            _ => p.link.dup_nth = vec![base + variant - 10],
        }
        let (ca, cb) = (only_child(&p.a), only_child(&p.b));
        p.a.ike.rekey_ike_sa(p.now, ha).unwrap();
        p.b.ike.rekey_ike_sa(p.now, hb).unwrap();
        settle_and_check(&mut p, &format!("variant {variant}"));
        assert_eq!(p.a.ike_rekeys, 1, "variant {variant}");
        assert_eq!(p.b.ike_rekeys, 1, "variant {variant}");
        let (na, nb) = (p.a.current_ike(), p.b.current_ike());
        assert_eq!(
            p.a.ike.ike_sas().collect::<Vec<_>>(),
            vec![na],
            "variant {variant}"
        );
        assert_eq!(
            p.b.ike.ike_sas().collect::<Vec<_>>(),
            vec![nb],
            "variant {variant}"
        );
        assert_eq!(p.a.ike.child_sas(na).len(), 1);
        assert_eq!(only_child(&p.a), ca);
        assert_eq!(only_child(&p.b), cb);
        // Both use the same IKE SA: a child rekey over it works.
        p.a.ike.rekey_child_sa(p.now, ca).unwrap();
        settle_and_check(&mut p, &format!("variant {variant}, child rekey after"));
    }
}

#[test]
fn ike_rekey_against_child_rekey() {
    for variant in 0..=10u64 {
        let (mut p, ha, _) = pair(link::seed_from_env(1100 + variant));
        if variant > 0 {
            p.link.drop_nth = vec![p.link.sent + variant];
        }
        let cb = only_child(&p.b);
        p.a.ike.rekey_ike_sa(p.now, ha).unwrap();
        p.b.ike.rekey_child_sa(p.now, cb).unwrap();
        settle_and_check(&mut p, &format!("variant {variant}"));
        assert_eq!(p.a.ike_rekeys, 1, "variant {variant}");
        assert_eq!(p.b.child_rekeys, 1, "variant {variant}");
        assert_eq!(p.a.ike.ike_sas().count(), 1);
        assert_eq!(p.b.ike.ike_sas().count(), 1);
    }
}

fn two_child_configs() -> (ike::PeerConfig, ike::PeerConfig) {
    let (a_ip, b_ip) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
    let mut a = peer_config("a", a_ip, b_ip, "fd01::/64", "fd02::/64");
    let mut b = peer_config("b", b_ip, a_ip, "fd02::/64", "fd01::/64");
    a.children.push(ChildConfig::new(
        "pfs",
        vec![ts("fd03::/64")],
        vec![ts("fd04::/64")],
        esp_props("aes128gcm16-x25519"),
    ));
    b.children.push(ChildConfig::new(
        "pfs",
        vec![ts("fd04::/64")],
        vec![ts("fd03::/64")],
        esp_props("aes128gcm16-x25519, aes256gcm16-ecp256"),
    ));
    (a, b)
}

#[test]
fn additional_child_sas_with_and_without_pfs() {
    let (a, b) = two_child_configs();
    let mut p = Pair::with_configs(
        link::seed_from_env(1200),
        LinkConfig::default(),
        a,
        b,
        EndpointConfig::default(),
        EndpointConfig::default(),
    );
    let h = p.connect();
    p.drive_until(100, Pair::established);
    // With PFS (a KE transform in the proposals), chosen by the selectors on B.
    let pfs = p.a.config.children[1].clone();
    p.a.ike.create_child_sa(p.now, h, pfs).unwrap();
    // Without PFS, a second instance of the first child, narrowed.
    let mut narrow = p.a.config.children[0].clone();
    narrow.name = "narrow".into();
    narrow.local_ts = vec![ts("fd01::5/128")];
    p.a.ike.create_child_sa(p.now, h, narrow).unwrap();
    p.run_for(Duration::from_secs(2));
    let names: Vec<_> =
        p.a.children()
            .iter()
            .map(|c| (c.name.clone(), c.suite.clone()))
            .collect();
    assert_eq!(
        names,
        vec![
            ("child".to_string(), "aes256gcm16-noesn".to_string()),
            ("pfs".into(), "aes128gcm16-x25519-noesn".into()),
            ("narrow".into(), "aes256gcm16-noesn".into()),
        ]
    );
    let b_names: Vec<_> = p.b.children().iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        b_names,
        vec!["child", "pfs", "child"],
        "B names them by its configuration"
    );
    assert_eq!(p.b.children()[2].ts_remote, vec![ts("fd01::5/128")]);
    // Traffic on the PFS child.
    p.send_ip_via(
        Side::A,
        "pfs",
        &ipv6_udp("fd03::1", "fd04::1", 1, 2, b"pfs"),
    )
    .unwrap();
    p.send_ip_via(
        Side::B,
        "pfs",
        &ipv6_udp("fd04::1", "fd03::1", 2, 1, b"pfs"),
    )
    .unwrap();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.a.delivered.len(), 1);
    assert_eq!(p.b.delivered.len(), 1);
    // A PFS rekey of it, from B.
    let pfs_b = p.b.children()[1].id;
    p.b.ike.rekey_child_sa(p.now, pfs_b).unwrap();
    p.run_for(Duration::from_secs(2));
    let rekeyed = p.b.children().last().unwrap().clone();
    assert_eq!(rekeyed.replaces, Some(pfs_b));
    assert_eq!(rekeyed.suite, "aes128gcm16-x25519-noesn");
    assert_eq!(rekeyed.ts_local, vec![ts("fd04::/64")]);
    assert!(p.violations.is_empty(), "{:?}", p.violations);
}

#[test]
fn unmatched_additional_child_fails_alone() {
    let mut p = Pair::new(link::seed_from_env(1300), LinkConfig::default());
    let h = p.connect();
    p.drive_until(100, Pair::established);
    let mut c = p.a.config.children[0].clone();
    c.name = "nowhere".into();
    c.local_ts = vec![ts("fd09::/64")];
    p.a.ike.create_child_sa(p.now, h, c).unwrap();
    p.run_for(Duration::from_secs(2));
    assert!(
        p.a.events
            .iter()
            .any(|e| matches!(e, Event::ChildSaFailed { name, reason, .. }
        if name == "nowhere" && reason.contains("TS_UNACCEPTABLE")))
    );
    assert!(p.a.ike.is_established(h));
    assert_eq!(p.a.installed.len(), 1);
    assert_eq!(
        p.a.ike
            .create_child_sa(p.now, IkeSaHandle(99), p.a.config.children[0].clone()),
        Err(ike::CommandError::UnknownSa)
    );
}

#[test]
fn soft_lifetimes_rekey_with_jitter_and_hard_lifetimes_delete() {
    let (a_ip, b_ip) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
    let mut a = peer_config("a", a_ip, b_ip, "fd01::/64", "fd02::/64");
    let mut b = peer_config("b", b_ip, a_ip, "fd02::/64", "fd01::/64");
    for c in a.children.iter_mut().chain(b.children.iter_mut()) {
        c.rekey_time = Some(Duration::from_secs(60));
        c.life_time = Some(Duration::from_secs(70));
    }
    a.rekey_time = Some(Duration::from_secs(300));
    b.rekey_time = Some(Duration::from_secs(300));
    let ep = EndpointConfig::default();
    let mut p = Pair::with_configs(
        link::seed_from_env(1400),
        LinkConfig::default(),
        a,
        b,
        ep.clone(),
        ep,
    );
    p.connect();
    p.drive_until(100, Pair::established);
    p.traffic = Some(TICK);
    p.run_for(Duration::from_secs(3600));
    // 60 s less 0–10 % jitter (the earlier of the two peers' timers): 60 to 67 rekeys in
    // an hour; 300 s likewise for the IKE SA.
    let rekeys = p.a.child_rekeys;
    assert!((59..=67).contains(&rekeys), "{rekeys} Child SA rekeys");
    assert!(
        (12..=13).contains(&p.a.ike_rekeys),
        "{} IKE SA rekeys",
        p.a.ike_rekeys
    );
    settle_and_check(&mut p, "an hour of lifetimes");
    // Both sides started some (jitter): responder-side events show up on both.
    let inbound_first = |p: &Peer| {
        p.events
            .iter()
            .filter(|e| matches!(e, Event::ChildSaInboundReady { .. }))
            .count()
    };
    assert!(inbound_first(&p.a) > 0 && inbound_first(&p.b) > 0);

    // Without soft lifetime, the hard one deletes.
    let (a_ip, b_ip) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
    let mut a = peer_config("a", a_ip, b_ip, "fd01::/64", "fd02::/64");
    let mut b = peer_config("b", b_ip, a_ip, "fd02::/64", "fd01::/64");
    for c in a.children.iter_mut().chain(b.children.iter_mut()) {
        c.rekey_time = None;
        c.life_time = Some(Duration::from_secs(30));
    }
    let mut p = Pair::with_configs(
        link::seed_from_env(1401),
        LinkConfig::default(),
        a,
        b,
        EndpointConfig::default(),
        EndpointConfig::default(),
    );
    p.connect();
    p.drive_until(100, Pair::established);
    p.run_for(Duration::from_secs(40));
    assert!(p.a.installed.is_empty() && p.b.installed.is_empty());
    assert!(p.violations.is_empty(), "{:?}", p.violations);
}

#[test]
fn esp_soft_limit_rekeys_and_hard_limit_deletes() {
    let (mut p, _, _) = pair(link::seed_from_env(1500));
    let ca = only_child(&p.a);
    let spi = p.a.infos[&ca].outbound.spi;
    p.a.ike.handle_esp_event(p.now, spi, false).unwrap();
    // Twice (inbound and outbound both hit the limit): one rekey.
    p.a.ike.handle_esp_event(p.now, spi, false).unwrap();
    settle_and_check(&mut p, "soft limit");
    assert_eq!(p.a.child_rekeys, 1);
    let ca = only_child(&p.a);
    let spi = p.a.infos[&ca].inbound.spi;
    p.a.ike.handle_esp_event(p.now, spi, true).unwrap();
    p.run_for(Duration::from_secs(5));
    assert!(p.a.installed.is_empty() && p.b.installed.is_empty());
    assert_eq!(
        p.a.ike.handle_esp_event(p.now, spi, false),
        Err(ike::CommandError::UnknownChildSa)
    );
}

#[test]
fn a_replaced_inbound_sa_takes_late_packets_for_the_grace_period() {
    let (mut p, _, _) = pair(link::seed_from_env(1600));
    p.traffic = None;
    let (ca, cb) = (only_child(&p.a), only_child(&p.b));
    // Two packets sealed by A on the current Child SA, held back as if queued behind the
    // rekey somewhere on the path.
    let (_, a_out) = p.a.installed[&ca];
    let late: Vec<Vec<u8>> = (0..2u8)
        .map(|i| {
            let pkt = ipv6_udp("fd01::1", "fd02::1", 1000, 2000, &[i; 8]);
            let (head, tail) = (
                p.a.esp.headroom(a_out).unwrap(),
                p.a.esp.tailroom(a_out, pkt.len()).unwrap(),
            );
            let mut buf = vec![0u8; head + pkt.len() + tail];
            buf[head..head + pkt.len()].copy_from_slice(&pkt);
            let wire =
                p.a.esp
                    .encapsulate(p.now, a_out, &mut buf, head..head + pkt.len())
                    .unwrap();
            buf[wire].to_vec()
        })
        .collect();
    // B rekeys and deletes the old Child SA; its old inbound SA stays for the grace period.
    let eb = p.b.events.len();
    p.b.ike.rekey_child_sa(p.now, cb).unwrap();
    p.drive_until(200, |p| {
        p.b.events[eb..]
            .iter()
            .any(|e| matches!(e, Event::ChildSaDeleted { id, .. } if *id == cb))
    });
    let deleted_at = p.now;
    assert!(p.b.events[eb..].iter().any(|e| matches!(
        e,
        Event::ChildSaDeleted { id, keep_inbound: true, .. } if *id == cb
    )));
    let mut first = late[0].clone();
    let inner =
        p.b.esp
            .decapsulate(p.now, &mut first)
            .expect("a late packet within the grace");
    assert_eq!(&first[inner.range][48..], &[0u8; 8]);
    // After it, the inbound SA is gone: the second late packet is an unknown SPI.
    p.run_for(Duration::from_secs(6));
    let expired = p.b.events[eb..]
        .iter()
        .any(|e| matches!(e, Event::ChildSaInboundExpired { id, .. } if *id == cb));
    assert!(expired, "ChildSaInboundExpired within 6 s of the Delete");
    assert!(p.now - deleted_at >= Duration::from_secs(5));
    let mut second = late[1].clone();
    assert!(matches!(
        p.b.esp.decapsulate(p.now, &mut second),
        Err(esp::DropReason::UnknownSpi(_))
    ));
    assert!(p.violations.is_empty(), "{:?}", p.violations);
    assert!(p.b.retiring.is_empty() && p.a.retiring.is_empty());
}

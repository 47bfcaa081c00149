//! Model-based test of rekeying (RFC 7296 §2.8, §2.25): random sequences of commands from
//! both peers (Child SA and IKE SA rekeys, alone, simultaneous or crossed, Delete against
//! rekey, waits that let the jittered lifetimes fire), with targeted drops and duplicates
//! on a reordering link, while ESP traffic flows over a lossless path. After every step,
//! once the exchanges have run out, the peers must agree: the model is "one IKE SA, one
//! Child SA named `child`, installed as mirror images", every ESP packet sent has arrived
//! (no drop in either ESP engine), and no inbound SA was removed while the peer still sent
//! on it. Long run: days of rekeys every few minutes under 5 % loss.

mod common;

use std::time::Duration;

use common::*;
use ike::{EndpointConfig, Event, IkeSaHandle};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    RekeyChild(bool),
    RekeyIke(bool),
    RekeyChildBoth,
    RekeyIkeBoth,
    /// One side rekeys the IKE SA, the other the Child SA.
    Crossed(bool),
    /// One side rekeys the Child SA, the other deletes it (then it is created again).
    RekeyVsDelete(bool),
    /// Drop the n-th next IKE datagram.
    Drop(u64),
    /// Duplicate the n-th next IKE datagram.
    Dup(u64),
    /// Let time pass (lifetimes fire with their jitter).
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(Op::RekeyChild),
        any::<bool>().prop_map(Op::RekeyIke),
        Just(Op::RekeyChildBoth),
        Just(Op::RekeyIkeBoth),
        any::<bool>().prop_map(Op::Crossed),
        any::<bool>().prop_map(Op::RekeyVsDelete),
        (1..8u64).prop_map(Op::Drop),
        (1..8u64).prop_map(Op::Dup),
        (1..400u64).prop_map(Op::Wait),
    ]
}

fn side(a: bool) -> Side {
    if a { Side::A } else { Side::B }
}

fn ike_of(p: &Peer) -> Option<IkeSaHandle> {
    p.ike.ike_sas().find(|h| p.ike.is_established(*h))
}

fn child_of(p: &Peer) -> Option<ike::ChildSaId> {
    p.outbound_child("child")
}

fn configs() -> (ike::PeerConfig, ike::PeerConfig, EndpointConfig) {
    let (a_ip, b_ip) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
    let mut a = peer_config("a", a_ip, b_ip, "fd01::/64", "fd02::/64");
    let mut b = peer_config("b", b_ip, a_ip, "fd02::/64", "fd01::/64");
    for c in a.children.iter_mut().chain(b.children.iter_mut()) {
        c.rekey_time = Some(Duration::from_secs(240));
        // Room for a rekey's full retransmission schedule before the hard lifetime.
        c.life_time = Some(Duration::from_secs(600));
        c.esp_proposals = esp_props("aes128gcm16-x25519");
    }
    a.rekey_time = Some(Duration::from_secs(600));
    b.rekey_time = Some(Duration::from_secs(600));
    (a, b, EndpointConfig::default())
}

/// Runs until the exchanges are over and the peers agree; checks the invariants.
fn settle(p: &mut Pair, step: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    p.run_for(Duration::from_secs(20));
    let mut waited = 0;
    while p.converged().is_err() && waited < 600 {
        p.run_for(Duration::from_secs(5));
        waited += 5;
    }
    let ctx = || format!("after step {step} of {ops:?} (seed {})", p.seed);
    prop_assert!(p.violations.is_empty(), "{:?} {}", p.violations, ctx());
    if let Err(e) = p.converged() {
        return Err(TestCaseError::fail(format!("not converged: {e} {}", ctx())));
    }
    prop_assert!(
        p.a.esp_drops.is_empty() && p.b.esp_drops.is_empty(),
        "ESP drops A {:?} B {:?} {}",
        p.a.esp_drop_counts(),
        p.b.esp_drop_counts(),
        ctx()
    );
    let (sent, delivered) = p.esp_totals();
    prop_assert!(
        sent - delivered <= 2,
        "sent {sent} delivered {delivered} {}",
        ctx()
    );
    prop_assert!(
        p.a.closed().is_empty() && p.b.closed().is_empty(),
        "{}",
        ctx()
    );
    prop_assert_eq!(p.a.child_names().len(), 1, "{}", ctx());
    prop_assert!(
        ike_of(&p.a).is_some() && ike_of(&p.b).is_some(),
        "{}",
        ctx()
    );
    // Bounded: replaced IKE SAs go away, Child SAs do not pile up.
    prop_assert!(p.a.ike.ike_sas().count() <= 3 && p.b.ike.ike_sas().count() <= 3);
    prop_assert!(
        p.a.esp.sa_count() <= 6 && p.b.esp.sa_count() <= 6,
        "{}",
        ctx()
    );
    Ok(())
}

fn run(seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let (a, b, ep) = configs();
    let link = LinkConfig {
        reorder: 0.3,
        duplicate: 0.05,
        ..LinkConfig::default()
    };
    let mut p = Pair::with_configs(seed, link, a, b, ep.clone(), ep);
    p.connect();
    p.drive_until(200, Pair::established);
    p.traffic = Some(Duration::from_millis(250));
    for (i, op) in ops.iter().enumerate() {
        let now = p.now;
        let base = p.link.sent;
        match *op {
            Op::RekeyChild(x) => {
                let s = side(x);
                if let Some(c) = child_of(p.peer(s)) {
                    p.peer(s).ike.rekey_child_sa(now, c).unwrap();
                }
            }
            Op::RekeyIke(x) => {
                let s = side(x);
                if let Some(h) = ike_of(p.peer(s)) {
                    p.peer(s).ike.rekey_ike_sa(now, h).unwrap();
                }
            }
            Op::RekeyChildBoth => {
                for s in [Side::A, Side::B] {
                    if let Some(c) = child_of(p.peer(s)) {
                        p.peer(s).ike.rekey_child_sa(now, c).unwrap();
                    }
                }
            }
            Op::RekeyIkeBoth => {
                for s in [Side::A, Side::B] {
                    if let Some(h) = ike_of(p.peer(s)) {
                        p.peer(s).ike.rekey_ike_sa(now, h).unwrap();
                    }
                }
            }
            Op::Crossed(x) => {
                let (s, o) = (side(x), side(!x));
                if let Some(h) = ike_of(p.peer(s)) {
                    p.peer(s).ike.rekey_ike_sa(now, h).unwrap();
                }
                if let Some(c) = child_of(p.peer(o)) {
                    p.peer(o).ike.rekey_child_sa(now, c).unwrap();
                }
            }
            Op::RekeyVsDelete(x) => {
                // A deliberate Delete stops traffic: pause it, then bring the child back.
                let tick = p.traffic.take();
                p.run_for(Duration::from_millis(50));
                let (s, o) = (side(x), side(!x));
                let now = p.now;
                if let Some(c) = child_of(p.peer(s)) {
                    p.peer(s).ike.rekey_child_sa(now, c).unwrap();
                }
                if let Some(c) = child_of(p.peer(o)) {
                    p.peer(o).ike.delete_child_sa(now, c).unwrap();
                }
                p.run_for(Duration::from_secs(400));
                prop_assert!(
                    p.a.installed.is_empty() && p.b.installed.is_empty(),
                    "delete won: A {:?} B {:?}",
                    p.a.installed.keys(),
                    p.b.installed.keys()
                );
                let cfg = p.a.config.children[0].clone();
                let h = ike_of(&p.a).expect("IKE SA");
                let now = p.now;
                p.a.ike.create_child_sa(now, h, cfg).unwrap();
                p.run_for(Duration::from_secs(5));
                p.traffic = tick;
            }
            Op::Drop(n) => p.link.drop_nth.push(base + n),
            Op::Dup(n) => p.link.dup_nth.push(base + n),
            Op::Wait(s) => p.run_for(Duration::from_secs(s)),
        }
        settle(&mut p, i, ops)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("IPSEC_MODEL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn rekey_model(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..10)) {
        run(seed, &ops)?;
    }
}

/// Days of rekeys every few minutes under 5 % loss (with duplication and reordering) on
/// the IKE path, traffic both ways every second on a lossless ESP path: no packet lost to
/// rekeying, memory bounded.
#[test]
fn long_run_days_of_rekeys_under_loss() {
    let days: u64 = std::env::var("IPSEC_LONG_RUN_DAYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (a_ip, b_ip) = (A_IP.parse().unwrap(), B_IP.parse().unwrap());
    let mut a = peer_config("a", a_ip, b_ip, "fd01::/64", "fd02::/64");
    let mut b = peer_config("b", b_ip, a_ip, "fd02::/64", "fd01::/64");
    for c in a.children.iter_mut().chain(b.children.iter_mut()) {
        c.rekey_time = Some(Duration::from_secs(180));
        // Room for a rekey's full retransmission schedule (about 3 min) before the hard
        // lifetime, as strongSwan's defaults have (1 h / 1.1 h).
        c.life_time = Some(Duration::from_secs(480));
    }
    a.rekey_time = Some(Duration::from_secs(900));
    b.rekey_time = Some(Duration::from_secs(900));
    let ep = EndpointConfig::default();
    let seed = link::seed_from_env(4242);
    let mut p = Pair::with_configs(seed, LinkConfig::lossy(0.05), a, b, ep.clone(), ep);
    p.connect();
    p.drive_until(2000, Pair::established);
    p.traffic = Some(Duration::from_secs(1));
    let mut max_sas = 0;
    let mut max_esp = 0;
    for hour in 0..days * 24 {
        p.run_for(Duration::from_secs(3600));
        max_sas = max_sas.max(p.a.ike.ike_sas().count().max(p.b.ike.ike_sas().count()));
        max_esp = max_esp.max(p.a.esp.sa_count().max(p.b.esp.sa_count()));
        assert!(p.violations.is_empty(), "hour {hour}: {:?}", p.violations);
        assert!(
            p.a.esp_drops.is_empty() && p.b.esp_drops.is_empty(),
            "hour {hour}: ESP drops A {:?} B {:?}",
            p.a.esp_drop_counts(),
            p.b.esp_drop_counts()
        );
        assert!(
            p.a.closed().is_empty() && p.b.closed().is_empty(),
            "hour {hour}"
        );
        // The harness keeps its records bounded too.
        p.a.events.clear();
        p.b.events.clear();
        p.a.delivered.clear();
        p.b.delivered.clear();
    }
    let delivered = p.a.esp_sent + p.b.esp_sent; // all arrived: no drops, checked above
    let retransmits = p.a.ike.stats().retransmits + p.b.ike.stats().retransmits;
    eprintln!(
        "long run: {days} virtual days, seed {seed}: Child SA rekeys {} (A view), IKE SA rekeys {}, \
         ESP packets sent {delivered}, ESP drops 0, IKE datagrams lost by the link {} of {}, \
         retransmissions {retransmits}, max IKE SAs per peer {max_sas}, max ESP SAs per peer {max_esp}",
        p.a.child_rekeys, p.a.ike_rekeys, p.link.lost, p.link.sent
    );
    assert!(p.a.child_rekeys >= days * 24 * 20 - 10);
    assert!(p.a.ike_rekeys >= days * 24 * 4 - 2);
    assert!(max_sas <= 3 && max_esp <= 6, "{max_sas} {max_esp}");
    let _ = Event::IkeSaRekeyed {
        old: IkeSaHandle(0),
        new: IkeSaHandle(0),
    };
}

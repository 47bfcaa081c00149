//! Loss of each message of the INFORMATIONAL exchanges (RFC 7296 §1.4, §2.1): Delete of a
//! Child SA, Delete of the IKE SA, and a liveness check, with the request or the response
//! dropped once.

mod common;

use std::time::Duration;

use common::*;
use ike::CloseReason;

fn established(seed: u64) -> Pair {
    let mut p = Pair::new(seed, LinkConfig::default());
    p.connect();
    p.drive_until(100, Pair::established);
    p
}

#[test]
fn child_delete_survives_the_loss_of_either_message() {
    for lost in [1u64, 2] {
        let mut p = established(40 + lost);
        let base = p.link.sent;
        p.link.drop_nth = vec![base + lost];
        let child = *p.a.installed.keys().next().unwrap();
        let now = p.now;
        p.a.ike.delete_child_sa(now, child).unwrap();
        p.drive_until(200, |p| {
            p.a.installed.is_empty() && p.b.installed.is_empty()
        });
        assert_eq!(p.a.deleted_children(), 1, "lost message {lost}");
        assert_eq!(p.b.deleted_children(), 1, "lost message {lost}");
        assert_eq!(p.a.ike.stats().retransmits, 1);
        // A lost response is answered again from the cache, not processed twice.
        assert_eq!(
            p.b.ike.stats().responses_resent,
            if lost == 2 { 1 } else { 0 }
        );
        assert!(
            p.a.closed().is_empty() && p.b.closed().is_empty(),
            "the IKE SA stays"
        );
    }
}

#[test]
fn ike_delete_survives_the_loss_of_either_message() {
    for lost in [1u64, 2] {
        let mut p = established(50 + lost);
        let base = p.link.sent;
        p.link.drop_nth = vec![base + lost];
        let sa = p.a.established()[0];
        let now = p.now;
        p.a.ike.close(now, sa).unwrap();
        p.drive_until(500, |p| {
            !p.a.closed().is_empty() && !p.b.closed().is_empty()
        });
        // Whether or not the peer's answer got through, closing is what we asked for.
        assert_eq!(
            p.a.closed(),
            vec![CloseReason::LocallyClosed],
            "lost message {lost}"
        );
        assert_eq!(
            p.b.closed(),
            vec![CloseReason::DeletedByPeer],
            "lost message {lost}"
        );
        assert!(p.a.installed.is_empty() && p.b.installed.is_empty());
        assert_eq!(p.a.ike.ike_sas().count() + p.b.ike.ike_sas().count(), 0);
    }
}

#[test]
fn liveness_check_survives_the_loss_of_either_message() {
    for lost in [1u64, 2] {
        let mut p = established(60 + lost);
        let base = p.link.sent;
        p.link.drop_nth = vec![base + lost];
        let sa = p.a.established()[0];
        let now = p.now;
        p.a.ike.probe(now, sa).unwrap();
        p.run_for(Duration::from_secs(30));
        assert!(
            p.a.closed().is_empty(),
            "lost message {lost}: {:?}",
            p.a.closed()
        );
        assert_eq!(p.a.ike.stats().retransmits, 1);
    }
}

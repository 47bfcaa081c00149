//! Replays the committed fuzz corpora and regression inputs of the IKE targets
//! (`fuzz/corpus/<target>/*`, `fuzz/regressions/<target>/*`) through the very checking
//! functions the fuzz targets call, so plain `cargo test` guards every input the fuzzer
//! ever found interesting. The harness sources live in `fuzz/harness/`.

#[path = "../../fuzz/harness/ike.rs"]
mod ike_harness;
#[path = "../../fuzz/harness/input.rs"]
mod input;
#[path = "../../fuzz/harness/provider.rs"]
mod provider;
#[path = "../../fuzz/harness/replay.rs"]
mod replay_harness;
#[path = "../../fuzz/harness/strings.rs"]
mod strings_harness;

use ike_harness::Role;

/// Replays `target`'s committed inputs through `check`.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    replay_harness::replay(&fuzz, target, check)
}

#[test]
fn ike_message_corpus() {
    assert!(replay("ike_message", ike_harness::check_message) > 0);
}

#[test]
fn ike_responder_corpus() {
    assert!(
        replay("ike_responder", |d| ike_harness::run_endpoint(
            Role::Responder,
            d
        )) > 0
    );
}

#[test]
fn ike_initiator_corpus() {
    assert!(
        replay("ike_initiator", |d| ike_harness::run_endpoint(
            Role::Initiator,
            d
        )) > 0
    );
}

#[test]
fn proposal_strings_corpus() {
    assert!(replay("proposal_strings", strings_harness::check_strings) > 0);
}

/// The seeds as generated now (not as committed): the fuzzing provider still lets two
/// endpoints establish, and every generated input passes its harness.
#[test]
fn generated_seeds_pass() {
    for (_, s) in ike_harness::message_seeds() {
        ike_harness::check_message(&s);
    }
    for role in [Role::Responder, Role::Initiator] {
        for (_, s) in ike_harness::endpoint_seeds(role) {
            ike_harness::run_endpoint(role, &s);
        }
    }
    for (_, s) in strings_harness::seeds() {
        strings_harness::check_strings(&s);
    }
}

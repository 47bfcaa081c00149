//! Replays the committed fuzz corpora and regression inputs of the ESP and `ipsec-core`
//! targets (`fuzz/corpus/<target>/*`, `fuzz/regressions/<target>/*`) through the very
//! checking functions the fuzz targets call, so plain `cargo test` guards every input the
//! fuzzer ever found interesting. The harness sources live in `fuzz/harness/`.

#[path = "../../fuzz/harness/core.rs"]
mod core_harness;
#[path = "../../fuzz/harness/esp.rs"]
mod esp_harness;
#[path = "../../fuzz/harness/input.rs"]
mod input;
#[path = "../../fuzz/harness/provider.rs"]
mod provider;
#[path = "../../fuzz/harness/replay.rs"]
mod replay_harness;

/// Replays `target`'s committed inputs through `check`.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    replay_harness::replay(&fuzz, target, check)
}

#[test]
fn esp_decapsulate_corpus() {
    assert!(replay("esp_decapsulate", esp_harness::check_esp) > 0);
}

#[test]
fn replay_window_corpus() {
    assert!(replay("replay_window", core_harness::check_replay_window) > 0);
}

#[test]
fn traffic_selectors_corpus() {
    assert!(replay("traffic_selectors", core_harness::check_traffic_selectors) > 0);
}

/// The seeds as generated now (not as committed) pass their harnesses.
#[test]
fn generated_seeds_pass() {
    for (_, s) in esp_harness::seeds() {
        esp_harness::check_esp(&s);
    }
    for (_, s) in core_harness::replay_seeds() {
        core_harness::check_replay_window(&s);
    }
    for (_, s) in core_harness::ts_seeds() {
        core_harness::check_traffic_selectors(&s);
    }
}

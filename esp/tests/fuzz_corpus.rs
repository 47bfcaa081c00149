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

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;

/// Runs `check` on every file of the target's corpus and regression directories; returns
/// how many there were. A failing input is named before the panic is propagated.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            let data = std::fs::read(f).expect("read corpus file");
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
                eprintln!("fuzz input {} failed", f.display());
                resume_unwind(e);
            }
            n += 1;
        }
    }
    n
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

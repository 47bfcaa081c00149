#![no_main]
//! Fuzz target `replay_window`; the check lives in `fuzz/harness/` (see `src/lib.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_fuzz::core_harness::check_replay_window(data);
});

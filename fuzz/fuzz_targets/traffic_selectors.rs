#![no_main]
//! Fuzz target `traffic_selectors`; the check lives in `fuzz/harness/` (see `src/lib.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_fuzz::core_harness::check_traffic_selectors(data);
});

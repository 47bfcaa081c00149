#![no_main]
//! Fuzz target `esp_decapsulate`; the check lives in `fuzz/harness/` (see `src/lib.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_fuzz::esp_harness::check_esp(data);
});

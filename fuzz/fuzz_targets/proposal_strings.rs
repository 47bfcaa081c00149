#![no_main]
//! Fuzz target `proposal_strings`; the check lives in `fuzz/harness/` (see `src/lib.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_fuzz::strings_harness::check_strings(data);
});

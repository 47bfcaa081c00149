#![no_main]
//! Fuzz target `ike_responder`; the check lives in `fuzz/harness/` (see `src/lib.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_fuzz::ike_harness::run_endpoint(ipsec_fuzz::ike_harness::Role::Responder, data);
});

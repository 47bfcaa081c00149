#![no_main]
//! Fuzz target `tun_coalescer` (needs `--features peer-config`); the check lives in
//! `fuzz/harness/coalescer.rs`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_fuzz::coalescer_harness::check_coalescer(data);
});

#![no_main]
//! Fuzz target `peer_config` (needs `--features peer-config`); the check lives in
//! `fuzz/harness/peer_config.rs`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_fuzz::peer_config_harness::check_peer_config(data);
});

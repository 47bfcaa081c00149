//! The fuzz harnesses of ipsec-rs. The code lives in `fuzz/harness/*.rs` so that the
//! `*fuzz_corpus*` integration tests of the library crates can compile the very same
//! checking functions with `#[path]` and replay the corpora under plain `cargo test`.

#[cfg(feature = "peer-config")]
#[path = "../harness/coalescer.rs"]
pub mod coalescer_harness;
#[path = "../harness/core.rs"]
pub mod core_harness;
#[path = "../harness/esp.rs"]
pub mod esp_harness;
#[path = "../harness/ike.rs"]
pub mod ike_harness;
#[path = "../harness/input.rs"]
pub mod input;
#[cfg(feature = "peer-config")]
#[path = "../harness/peer_config.rs"]
pub mod peer_config_harness;
#[path = "../harness/provider.rs"]
pub mod provider;
#[path = "../harness/strings.rs"]
pub mod strings_harness;

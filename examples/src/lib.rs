//! Shared code of the example peers: the `ipsec-peer` configuration file, the key log, the
//! outbound policy table, TUN and UDP plumbing and the run loop.
//!
//! The library crates (`ipsec-core`, `esp`, `ike`) are sans-IO; everything that touches a
//! file descriptor or a clock lives here.

pub mod config;
pub mod datapath;
pub mod esp_glue;
pub mod gro;
pub mod ike_endpoint;
pub mod ike_glue;
pub mod keylog;
pub mod net;
pub mod peer;
pub mod spd;
pub mod tun;

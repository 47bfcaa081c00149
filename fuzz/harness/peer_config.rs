//! The `ipsec-peer` configuration parser (`examples::config::Config::parse_with`).
//!
//! Only in the fuzz crate, behind its `peer-config` feature: no library crate depends on
//! `examples`, so there is no `cargo test` replay of this corpus.
#![allow(dead_code)]

use std::path::Path;

/// Parses the input as a configuration file: no panic, and whatever parses can be asked
/// for its routed selectors.
pub fn check_peer_config(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // `secret_file` makes the parser read files (any path: /dev/zero would hang); the
    // fuzzer must not touch the file system. Keys may be spelled with \u escapes.
    if src.contains("file") || src.contains("\\u") || src.contains("\\U") {
        return;
    }
    let env = |k: &str| (k == "PEER_PSK").then(|| "0x00112233445566778899aabbccddeeff".into());
    let dir = Path::new("/nonexistent-fuzz-dir");
    if let Ok(cfg) = examples::config::Config::parse_with(Path::new("fuzz.toml"), src, dir, &env) {
        let _ = cfg.routed_selectors();
    }
}

/// A few configurations in the file's dialect.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let full = r#"
[tun]
name = "fz0"
mtu = 1380
addresses = ["fd01::1/128", "10.1.0.1/32"]

[connections.gw]
local_addrs = "fd00::1"
remote_addrs = ["fd00::2", "192.0.2.2"]
proposals = ["aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048"]
dpd_delay = "20s"

[connections.gw.local]
auth = "psk"
id = "@a.example"

[connections.gw.remote]
auth = "psk"
id = "fd00::2"

[connections.gw.children.net]
local_ts = ["fd01::/64"]
remote_ts = ["fd02::/64", "10.2.0.0/16[udp/53]"]
esp_proposals = ["chacha20poly1305"]
mode = "tunnel"
rekey_time = "50m"
life_time = "1h"

[secrets.one]
id = ["@a.example", "fd00::2"]
secret = "0x000102030405060708090a0b0c0d0e0f10111213"

[secrets.two]
secret_env = "PEER_PSK"

[[manual_sa]]
direction = "in"
spi = 0x2001
esp = "aes128gcm16"
key = "0x000102030405060708090a0b0c0d0e0f10111213"
local_addr = "fd00::1"
remote_addr = "fd00::2"
local_ts = ["fd01::1/128"]
remote_ts = ["fd02::1/128"]
"#;
    let minimal = "[tun]\nname = \"x\"\n";
    vec![
        ("full".into(), full.as_bytes().to_vec()),
        ("minimal".into(), minimal.as_bytes().to_vec()),
    ]
}

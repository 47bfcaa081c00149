use super::*;

const FULL: &str = r#"
[tun]
name = "ipsr0"
mtu = 1400
addresses = ["fd01::1/128", "10.1.0.1/32"]

[connections.t]
version = 2
local_addrs = "fd00::1, 10.0.0.1"
remote_addrs = ["fd00::2"]
proposals = ["aes256gcm16-prfsha256-x25519"]
encap = true
dpd_delay = "30s"

[connections.t.local]
auth = "psk"
id = "fd00::1"

[connections.t.remote]
auth = "psk"
id = "fd00::2"

[connections.t.children.c]
local_ts = ["fd01::1/128"]
remote_ts = ["fd02::/64", "10.2.0.0/16[tcp/443]"]
esp_proposals = ["aes256gcm16-x25519"]
mode = "tunnel"
start_action = "trap"
rekey_time = "15s"
life_time = "1h"

[secrets.ike-1]
id = ["fd00::1", "fd00::2"]
secret = "supersecretpsk0123456789"

[secrets.ike-2]
secret = "0x00ff"

[secrets.ike-3]
secret_env = "PEER_PSK"

[[manual_sa]]
direction = "out"
spi = 0x1001
esp = "aes256gcm16"
key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
local_addr = "fd00::1"
remote_addr = "fd00::2"
local_ts = ["fd01::1/128"]
remote_ts = ["fd02::1/128"]

[[manual_sa]]
direction = "in"
spi = 4098
esp = "aes128gcm16"
key = "0x000102030405060708090a0b0c0d0e0f10111213"
mode = "tunnel"
local_addr = "fd00::1"
remote_addr = "fd00::2"
local_port = 4501
remote_port = 4502
replay_window = 0
esn = true
local_ts = "fd01::1"
remote_ts = "fd02::1"
"#;

fn env(k: &str) -> Option<String> {
    (k == "PEER_PSK").then(|| "from-env".to_string())
}

fn parse(src: &str) -> Result<Config, ConfigError> {
    Config::parse_with(Path::new("peer.toml"), src, Path::new("/nonexistent"), &env)
}

/// Parses `src`, expects an error, checks its line and key, and that the message contains
/// `needle`.
#[track_caller]
fn expect_err(src: &str, line: usize, key: &str, needle: &str) -> ConfigError {
    let e = parse(src).expect_err("must fail");
    assert_eq!(e.file, Path::new("peer.toml"), "{e}");
    assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
    assert!(e.message.contains(needle), "{e} lacks {needle:?}");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("peer.toml:{line}:")), "{shown}");
    assert!(shown.contains(key), "{shown}");
    e
}

const CONN_HEAD: &str = "[connections.t]\nremote_addrs = \"fd00::2\"\n[connections.t.local]\nauth = \"psk\"\n[connections.t.remote]\nauth = \"psk\"\n";

#[test]
fn full_example_parses() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.tun.name, "ipsr0");
    assert_eq!(c.tun.mtu, 1400);
    assert_eq!(c.tun.addresses[1].to_string(), "10.1.0.1/32");
    let t = &c.connections["t"];
    assert_eq!(t.local_addrs.len(), 2);
    assert_eq!(t.local_port, 500);
    assert_eq!(t.proposals, ["aes256gcm16-prfsha256-x25519"]);
    assert!(t.encap);
    assert_eq!(t.dpd_delay, Some(Duration::from_secs(30)));
    assert_eq!(t.local.auth, AuthMethod::Psk);
    assert_eq!(t.remote.id.as_deref(), Some("fd00::2"));
    let ch = &t.children["c"];
    assert_eq!(ch.local_ts[0].to_string(), "fd01::1/128");
    assert_eq!(ch.remote_ts[1].to_string(), "10.2.0.0/16[6/443]");
    assert_eq!(ch.mode, Mode::Tunnel);
    assert_eq!(ch.start_action, StartAction::Trap);
    assert_eq!(ch.rekey_time, Duration::from_secs(15));
    assert_eq!(ch.life_time, Duration::from_secs(3600));
    assert_eq!(c.secrets["ike-1"].ids.len(), 2);
    assert_eq!(
        c.secrets["ike-1"].bytes().unwrap().expose(),
        b"supersecretpsk0123456789"
    );
    assert_eq!(c.secrets["ike-2"].bytes().unwrap().expose(), [0, 0xff]);
    assert_eq!(c.secrets["ike-3"].bytes().unwrap().expose(), b"from-env");
    let m = &c.manual_sa;
    assert_eq!(m[0].spi, Spi(0x1001));
    assert_eq!(m[0].alg, AeadAlgorithm::Aes256Gcm);
    assert_eq!(m[0].key.len(), 36);
    assert_eq!((m[0].local_port, m[0].remote_port), (4500, 4500));
    assert_eq!(m[0].replay_window, 1024);
    assert_eq!(m[1].direction, ManualDirection::In);
    assert_eq!((m[1].local_port, m[1].remote_port), (4501, 4502));
    assert_eq!(m[1].replay_window, 0);
    assert!(m[1].esn);
    assert_eq!(m[1].remote_ts[0].to_string(), "fd02::1/128");
    let routed: Vec<String> = c.routed_selectors().iter().map(|t| t.to_string()).collect();
    assert_eq!(routed, ["fd02::1/128", "fd02::/64", "10.2.0.0/16[6/443]"]);
}

#[test]
fn defaults() {
    let c = parse(CONN_HEAD).unwrap();
    assert_eq!(c.tun, TunConfig::default());
    let t = &c.connections["t"];
    assert_eq!(t.proposals, ["default"]);
    assert!(!t.encap);
    assert_eq!(t.dpd_delay, None);
    // swanctl's IKE SA defaults: rekey after 4 h, delete 10 % later if that failed.
    let h = |n: u64| Some(Duration::from_secs(n));
    assert_eq!(t.ike_lifetimes(), (h(4 * 3600), h(4 * 3600 + 1440)));
    let c = parse(&format!("{CONN_HEAD}[connections.t.children.c]\n")).unwrap();
    let ch = &c.connections["t"].children["c"];
    assert_eq!(ch.mode, Mode::Tunnel);
    assert_eq!(ch.start_action, StartAction::None);
    assert_eq!(ch.rekey_time, Duration::from_secs(3600));
    assert_eq!(ch.life_time, Duration::from_secs(3960));
    assert!(ch.local_ts.is_empty());
    let c = parse(&format!(
        "{CONN_HEAD}[connections.t.children.c]\nlocal_ts = \"dynamic\"\n"
    ))
    .unwrap();
    assert!(c.connections["t"].children["c"].local_ts.is_empty());
}

#[test]
fn durations() {
    for (s, n) in [
        ("15s", 15),
        ("90m", 5400),
        ("1h", 3600),
        ("2d", 172800),
        ("7", 7),
    ] {
        assert_eq!(parse_duration(s), Ok(Duration::from_secs(n)), "{s}");
        assert_eq!(
            parse_duration(&fmt_duration(Duration::from_secs(n))),
            Ok(Duration::from_secs(n))
        );
    }
    for bad in ["", "h", "1x", "-1s", "1.5h", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    let c = parse(&CONN_HEAD.replacen("\n", "\ndpd_delay = 0\n", 1)).unwrap();
    assert_eq!(c.connections["t"].dpd_delay, Some(Duration::ZERO));
    let h = |n: u64| Some(Duration::from_secs(n));
    for (keys, want) in [
        (
            "rekey_time = \"1h\"\nover_time = \"5m\"\n",
            (h(3600), h(3900)),
        ),
        ("rekey_time = \"10m\"\n", (h(600), h(660))),
        ("rekey_time = 0\n", (None, None)),
    ] {
        let c = parse(&CONN_HEAD.replacen("\n", &format!("\n{keys}"), 1)).unwrap();
        assert_eq!(c.connections["t"].ike_lifetimes(), want, "{keys}");
    }
}

#[test]
fn unknown_keys_are_errors_with_line_and_key() {
    expect_err("bogus = 1\n", 1, "bogus", "unknown field `bogus`");
    expect_err(
        "[tun]\nname = \"x\"\nmtus = 1400\n",
        3,
        "tun.mtus",
        "unknown field `mtus`",
    );
    expect_err("[nope]\n", 1, "nope", "unknown field `nope`");
    expect_err(
        &format!("{CONN_HEAD}lifetime = 3\n"),
        7,
        "connections.t.remote.lifetime",
        "unknown field `lifetime`",
    );
    expect_err(
        "[connections.t]\nremote_addrs = \"fd00::2\"\nrekey = 1\n",
        3,
        "connections.t.rekey",
        "unknown field `rekey`",
    );
    expect_err(
        &format!("{CONN_HEAD}[connections.t.children.c]\nlocal_ts = []\nremot_ts = []\n"),
        9,
        "connections.t.children.c.remot_ts",
        "unknown field `remot_ts`",
    );
    expect_err(
        "[secrets.a]\nsecret = \"x\"\npsk = \"y\"\n",
        3,
        "secrets.a.psk",
        "unknown field `psk`",
    );
    let mut src = FULL.replace("esn = true", "esn = true\nspi2 = 1");
    src.push('\n');
    let line = src.lines().position(|l| l == "spi2 = 1").unwrap() + 1;
    expect_err(&src, line, "manual_sa[1].spi2", "unknown field `spi2`");
}

#[test]
fn bad_values_are_errors_with_line_and_key() {
    let child = |body: &str| format!("{CONN_HEAD}[connections.t.children.c]\n{body}\n");
    expect_err(
        &child("local_ts = [\"fd01::/129\"]"),
        8,
        "connections.t.children.c.local_ts",
        "bad traffic selector",
    );
    expect_err(
        &child("remote_ts = \"fd02::1, x\""),
        8,
        "connections.t.children.c.remote_ts",
        "bad traffic selector",
    );
    expect_err(
        &child("remote_ts = [\n  \"fd02::1\",\n  \"zz\",\n]"),
        8,
        "connections.t.children.c.remote_ts",
        "bad traffic selector",
    );
    expect_err(
        &child("mode = \"tunel\""),
        8,
        "connections.t.children.c.mode",
        "bad mode",
    );
    expect_err(
        &child("mode = \"transport\""),
        8,
        "connections.t.children.c.mode",
        "transport mode is not supported by ipsec-peer",
    );
    expect_err(
        &child("mode = 1"),
        8,
        "connections.t.children.c.mode",
        "expected a string",
    );
    expect_err(
        &child("start_action = \"go\""),
        8,
        "connections.t.children.c.start_action",
        "unknown variant",
    );
    expect_err(
        &child("rekey_time = \"1y\""),
        8,
        "connections.t.children.c.rekey_time",
        "bad duration unit",
    );
    expect_err(
        &child("life_time = \"soon\""),
        8,
        "connections.t.children.c.life_time",
        "bad duration",
    );
    expect_err(
        &child("life_time = -5"),
        8,
        "connections.t.children.c.life_time",
        "negative",
    );
    expect_err(
        &child("rekey_time = \"2h\"\nlife_time = \"1h\""),
        7,
        "connections.t.children.c",
        "must exceed",
    );
    expect_err(
        &child("rekey_time = 0"),
        7,
        "connections.t.children.c",
        "above zero",
    );
    expect_err(
        &child("esp_proposals = 3"),
        8,
        "connections.t.children.c.esp_proposals",
        "comma-separated",
    );

    expect_err(
        &CONN_HEAD.replacen("\n", "\ndpd_delay = true\n", 1),
        2,
        "connections.t.dpd_delay",
        "duration",
    );
    expect_err(
        "[connections.t]\nversion = 1\n",
        2,
        "connections.t.version",
        "only 2",
    );
    expect_err(
        "[connections.t]\nlocal_addrs = \"fd00::1, 300.1.1.1\"\n",
        2,
        "connections.t.local_addrs",
        "bad IP address",
    );
    expect_err(
        "[connections.t]\nremote_addrs = [1]\n",
        2,
        "connections.t.remote_addrs",
        "expected a string",
    );
    expect_err(
        "[connections.t]\nlocal_port = 70000\n",
        2,
        "connections.t.local_port",
        "",
    );
    expect_err(
        "[connections.t]\nencap = \"yes\"\n",
        2,
        "connections.t.encap",
        "expected a boolean",
    );
    expect_err(
        "[connections.t]\nremote_addrs = \"fd00::2\"\n[connections.t.local]\nauth = \"pubkey\"\n",
        4,
        "connections.t.local.auth",
        "unknown variant `pubkey`",
    );
    expect_err(
        "[connections.t]\nremote_addrs = \"fd00::2\"\n[connections.t.local]\nid = \"x\"\n",
        3,
        "connections.t.local",
        "missing field `auth`",
    );
    expect_err(
        "[connections.t]\nremote_addrs = \"fd00::2\"\n",
        1,
        "connections.t",
        "missing field `local`",
    );

    expect_err("[tun]\nmtu = 100\n", 2, "tun.mtu", "below 576");
    expect_err(
        "[tun]\nname = \"averyveryverylongname\"\n",
        2,
        "tun.name",
        "bad interface name",
    );
    expect_err(
        "[tun]\naddresses = [\"fd01::1/200\"]\n",
        2,
        "tun.addresses",
        "bad prefix length",
    );
    expect_err(
        "[tun]\naddresses = [\"fd01::g\"]\n",
        2,
        "tun.addresses",
        "bad IP address",
    );
}

#[test]
fn syntax_errors_have_lines() {
    expect_err("[tun]\nname = \"x\nmtu = 3\n", 2, "tun.name", "");
    expect_err("[tun]\n[tun]\n", 2, "tun", "");
}

#[test]
fn secrets() {
    expect_err(
        "[secrets.a]\nid = \"x\"\n",
        1,
        "secrets.a",
        "one of `secret`",
    );
    expect_err(
        "[secrets.a]\nsecret = \"x\"\nsecret_env = \"E\"\n",
        1,
        "secrets.a",
        "only one of",
    );
    expect_err(
        "[secrets.a]\nsecret = \"0xzz\"\n",
        1,
        "secrets.a",
        "bad hex secret",
    );
    expect_err(
        "[secrets.a]\nsecret = \"0sAAAA\"\n",
        1,
        "secrets.a",
        "base64",
    );
    expect_err(
        "[secrets.a]\nsecret = \"\"\n",
        1,
        "secrets.a",
        "empty secret",
    );
    expect_err(
        "\n[secrets.a]\nsecret_env = \"UNSET_VAR\"\n",
        3,
        "secrets.a.secret_env",
        "UNSET_VAR is not set",
    );
    expect_err(
        "[secrets.a]\nsecret_file = \"missing.psk\"\n",
        2,
        "secrets.a.secret_file",
        "cannot read secret file",
    );

    let dir = std::env::temp_dir().join(format!("ipsec-peer-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("psk.txt"), "file-secret\n").unwrap();
    std::fs::write(dir.join("empty.txt"), "\n").unwrap();
    let c = Config::parse_with(
        Path::new("peer.toml"),
        "[secrets.a]\nsecret_file = \"psk.txt\"\n",
        &dir,
        &env,
    )
    .unwrap();
    assert_eq!(c.secrets["a"].bytes().unwrap().expose(), b"file-secret");
    let e = Config::parse_with(
        Path::new("peer.toml"),
        "[secrets.a]\nsecret_file = \"empty.txt\"\n",
        &dir,
        &env,
    )
    .unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (2, "secrets.a.secret_file"));
    // Secrets never show in Debug output.
    assert!(!format!("{c:?}").contains("file-secret"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manual_sa_errors() {
    let base = "[[manual_sa]]\ndirection = \"out\"\nspi = 4097\nesp = \"aes256gcm16\"\nkey = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223\"\nlocal_addr = \"fd00::1\"\nremote_addr = \"fd00::2\"\nlocal_ts = \"fd01::1\"\nremote_ts = \"fd02::1\"\n";
    parse(base).unwrap();
    let sub = |from: &str, to: &str| {
        assert!(base.contains(from));
        base.replace(from, to)
    };
    expect_err(
        &sub("\"out\"", "\"both\""),
        2,
        "manual_sa[0].direction",
        "unknown variant",
    );
    expect_err(&sub("4097", "255"), 1, "manual_sa[0]", "reserved");
    expect_err(&sub("4097", "-1"), 3, "manual_sa[0].spi", "");
    expect_err(
        &sub("aes256gcm16", "aes256"),
        4,
        "manual_sa[0].esp",
        "unsupported ESP transform",
    );
    expect_err(
        &sub("aes256gcm16", "aes128gcm16"),
        1,
        "manual_sa[0]",
        "needs 20",
    );
    expect_err(
        &sub("\"0001", "\"zz01"),
        5,
        "manual_sa[0].key",
        "bad hex key",
    );
    expect_err(
        &sub("\"fd00::2\"", "\"10.0.0.2\""),
        1,
        "manual_sa[0]",
        "different families",
    );
    expect_err(
        &sub("remote_ts = \"fd02::1\"\n", ""),
        1,
        "manual_sa[0]",
        "required",
    );
    expect_err(
        &format!("{base}encap = false\n"),
        1,
        "manual_sa[0]",
        "raw ESP",
    );
    expect_err(
        &format!("{base}mode = \"beet\"\n"),
        10,
        "manual_sa[0].mode",
        "bad mode",
    );
    expect_err(
        &sub("direction = \"out\"\n", ""),
        1,
        "manual_sa[0]",
        "missing field `direction`",
    );
    let two = format!("{base}\n{}", sub("4097", "0x2000").replace("spi", "spii"));
    expect_err(&two, 13, "manual_sa[1].spii", "unknown field");
    let dup = format!("{}{}", sub("out", "in"), sub("out", "in"));
    let e = parse(&dup).unwrap_err();
    assert_eq!(e.key, "manual_sa[1].spi");
    assert!(e.message.contains("duplicate inbound SPI"));
}

#[test]
fn remote_addrs_required() {
    let e = parse("[connections.t]\n[connections.t.local]\nauth = \"psk\"\n[connections.t.remote]\nauth = \"psk\"\n").unwrap_err();
    assert_eq!(e.key, "connections.t.remote_addrs");
}

#[test]
fn unreadable_file() {
    let e = Config::load(Path::new("/nonexistent/peer.toml")).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/peer.toml: cannot read")
    );
}

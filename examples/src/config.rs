//! The `ipsec-peer` configuration file: TOML with strongSwan swanctl.conf(5) vocabulary.
//!
//! ```toml
//! [tun]
//! name = "ipsr0"
//! mtu = 1400
//! addresses = ["fd01::1/128"]
//!
//! [connections.t]
//! local_addrs = ["fd00::1"]          # or "fd00::1, 10.0.0.1" as in swanctl
//! remote_addrs = ["fd00::2"]
//! proposals = ["aes256gcm16-prfsha256-x25519"]
//! encap = true
//! dpd_delay = "30s"
//! rekey_time = "4h"                 # IKE SA; deleted if not rekeyed by 4h + over_time
//! over_time = "24m"
//!
//! [connections.t.local]
//! auth = "psk"
//! id = "fd00::1"
//!
//! [connections.t.remote]
//! auth = "psk"
//! id = "fd00::2"
//!
//! [connections.t.children.c]
//! local_ts = ["fd01::1/128"]
//! remote_ts = ["fd02::1/128"]
//! esp_proposals = ["aes256gcm16-x25519"]
//! mode = "tunnel"
//! start_action = "start"
//! rekey_time = "1h"
//! life_time = "66m"
//!
//! [secrets.ike-1]
//! id = ["fd00::1", "fd00::2"]
//! secret_env = "IPSEC_PSK"           # or secret = "…" / secret_file = "psk.txt"
//!
//! # Static keys (like `ip xfrm state add`), installed into the ESP engine at start.
//! [[manual_sa]]
//! direction = "out"
//! spi = 0x1001
//! esp = "aes256gcm16"
//! key = "<72 hex digits: 32-octet key then 4-octet salt>"
//! local_addr = "fd00::1"
//! remote_addr = "fd00::2"
//! local_ts = ["fd01::1/128"]
//! remote_ts = ["fd02::1/128"]
//! ```
//!
//! Every problem (syntax, unknown key, bad value, missing secret file) is a [`ConfigError`]
//! that names the file, the line and column, and the dotted key, e.g.
//! `peer.toml:14:13: connections.t.dpd_delay: bad duration "zz" …`.
//!
//! Proposal strings are kept verbatim here; `ike::proposal` parses them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipsec_core::crypto::AeadAlgorithm;
use ipsec_core::{Mode, SecretBytes, Spi, TrafficSelector};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

/// A configuration problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line (0 if the problem is not tied to a place, e.g. the file is unreadable).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The dotted key the problem is about (`connections.t.children.c.local_ts`), or empty.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The TUN device carrying inner packets.
    #[serde(default)]
    pub tun: TunConfig,
    /// IKE connections, by name (swanctl `connections`).
    #[serde(default)]
    pub connections: BTreeMap<String, Connection>,
    /// Pre-shared keys, by name (swanctl `secrets`).
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    /// Statically keyed ESP SAs, installed at start (no IKE).
    #[serde(default)]
    pub manual_sa: Vec<ManualSa>,
}

/// `[tun]`: the TUN device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunConfig {
    /// Interface name (at most 15 octets).
    #[serde(default = "default_tun_name", deserialize_with = "de_ifname")]
    pub name: String,
    /// MTU of the inner packets. The default (1400) leaves room for an outer IPv6 header,
    /// UDP encapsulation and AES-GCM ESP overhead on a 1500-octet link.
    #[serde(default = "default_mtu", deserialize_with = "de_mtu")]
    pub mtu: u16,
    /// Addresses with prefix lengths, e.g. `fd01::1/128`, `10.1.0.1/32`.
    #[serde(default, deserialize_with = "de_list")]
    pub addresses: Vec<IpPrefix>,
}

impl Default for TunConfig {
    fn default() -> Self {
        Self {
            name: default_tun_name(),
            mtu: default_mtu(),
            addresses: Vec::new(),
        }
    }
}

fn default_tun_name() -> String {
    "ipsec0".into()
}

fn default_mtu() -> u16 {
    1400
}

/// `[connections.<name>]`: one IKE connection (swanctl.conf(5) `connections.<conn>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// IKE version; only 2 is accepted (present for swanctl compatibility).
    #[serde(default = "default_version", deserialize_with = "de_version")]
    pub version: u8,
    /// Our addresses (a list, or a comma-separated string as in swanctl).
    #[serde(default, deserialize_with = "de_list")]
    pub local_addrs: Vec<IpAddr>,
    /// The peer's addresses.
    #[serde(default, deserialize_with = "de_list")]
    pub remote_addrs: Vec<IpAddr>,
    /// Our IKE port (default 500).
    #[serde(default = "default_ike_port")]
    pub local_port: u16,
    /// The peer's IKE port (default 500).
    #[serde(default = "default_ike_port")]
    pub remote_port: u16,
    /// IKE proposals in strongSwan notation, kept verbatim (`ike::proposal` parses them).
    #[serde(default = "default_proposals", deserialize_with = "de_list")]
    pub proposals: Vec<String>,
    /// Force UDP encapsulation of ESP even without a NAT (RFC 3948).
    #[serde(default)]
    pub encap: bool,
    /// Dead peer detection interval; `None` or zero disables DPD.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub dpd_delay: Option<Duration>,
    /// IKE SA rekey interval (swanctl's default 4 h); zero never rekeys the IKE SA.
    #[serde(
        default = "default_ike_rekey_time",
        deserialize_with = "de_opt_duration"
    )]
    pub rekey_time: Option<Duration>,
    /// How long after `rekey_time` an IKE SA that could not be rekeyed is deleted (default
    /// 10 % of `rekey_time`).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub over_time: Option<Duration>,
    /// Our authentication round.
    pub local: AuthConfig,
    /// The peer's authentication round.
    pub remote: AuthConfig,
    /// Child SAs, by name.
    #[serde(default)]
    pub children: BTreeMap<String, Child>,
}

fn default_version() -> u8 {
    2
}

fn default_ike_rekey_time() -> Option<Duration> {
    Some(Duration::from_secs(4 * 3600))
}

impl Connection {
    /// The IKE SA's soft and hard lifetimes (`rekey_time`, `rekey_time + over_time`);
    /// none when `rekey_time` is zero.
    pub fn ike_lifetimes(&self) -> (Option<Duration>, Option<Duration>) {
        match self.rekey_time.filter(|d| !d.is_zero()) {
            Some(r) => (Some(r), Some(r + self.over_time.unwrap_or(r / 10))),
            None => (None, None),
        }
    }
}

fn default_ike_port() -> u16 {
    ipsec_core::natt::IKE_PORT
}

fn default_proposals() -> Vec<String> {
    vec!["default".into()]
}

/// `local` / `remote`: one authentication round.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Authentication method.
    pub auth: AuthMethod,
    /// IKE identity; defaults to the IP address in use (as strongSwan does).
    #[serde(default)]
    pub id: Option<String>,
}

/// Authentication methods (swanctl `auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// Pre-shared key (RFC 7296 §2.15).
    Psk,
}

/// `children.<name>`: one Child SA (swanctl `connections.<conn>.children.<child>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawChild")]
pub struct Child {
    /// Our traffic selectors; empty means `dynamic` (our outer address).
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's traffic selectors; empty means `dynamic`.
    pub remote_ts: Vec<TrafficSelector>,
    /// ESP proposals in strongSwan notation, kept verbatim.
    pub esp_proposals: Vec<String>,
    /// Tunnel (default) or transport mode.
    pub mode: Mode,
    /// What to do when the configuration is loaded.
    pub start_action: StartAction,
    /// When to rekey (default 1 h, as in swanctl).
    pub rekey_time: Duration,
    /// When the SA expires (default `rekey_time` + 10 %).
    pub life_time: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChild {
    #[serde(default, deserialize_with = "de_ts_list")]
    local_ts: Vec<TrafficSelector>,
    #[serde(default, deserialize_with = "de_ts_list")]
    remote_ts: Vec<TrafficSelector>,
    #[serde(default = "default_proposals", deserialize_with = "de_list")]
    esp_proposals: Vec<String>,
    #[serde(default, deserialize_with = "de_mode")]
    mode: Option<Mode>,
    #[serde(default)]
    start_action: StartAction,
    #[serde(default, deserialize_with = "de_opt_duration")]
    rekey_time: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    life_time: Option<Duration>,
}

impl TryFrom<RawChild> for Child {
    type Error = String;

    fn try_from(r: RawChild) -> Result<Self, String> {
        let rekey_time = r.rekey_time.unwrap_or(Duration::from_secs(3600));
        let life_time = r.life_time.unwrap_or(rekey_time + rekey_time / 10);
        if rekey_time.is_zero() {
            return Err("rekey_time must be above zero".into());
        }
        if life_time <= rekey_time {
            return Err(format!(
                "life_time ({}) must exceed rekey_time ({})",
                fmt_duration(life_time),
                fmt_duration(rekey_time)
            ));
        }
        Ok(Self {
            local_ts: r.local_ts,
            remote_ts: r.remote_ts,
            esp_proposals: r.esp_proposals,
            mode: r.mode.unwrap_or(Mode::Tunnel),
            start_action: r.start_action,
            rekey_time,
            life_time,
        })
    }
}

/// swanctl `start_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAction {
    /// Wait for the peer.
    #[default]
    None,
    /// Initiate when the configuration is loaded.
    Start,
    /// Initiate on the first packet matching the selectors.
    Trap,
}

/// `[secrets.<name>]`: a pre-shared key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawSecret")]
pub struct Secret {
    /// The identities this key is for (empty: any).
    pub ids: Vec<String>,
    /// Where the key comes from.
    pub source: SecretSource,
}

/// Where a secret comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// Written in the file.
    Inline(SecretBytes),
    /// Read from this file (relative to the configuration file) at load time.
    File(Spanned<PathBuf>),
    /// Read from this environment variable at load time.
    Env(Spanned<String>),
    /// Resolved: the key bytes.
    Resolved(SecretBytes),
}

impl Secret {
    /// The key bytes, once [`Config::load`] has resolved files and variables.
    pub fn bytes(&self) -> Option<&SecretBytes> {
        match &self.source {
            SecretSource::Inline(b) | SecretSource::Resolved(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    #[serde(default, deserialize_with = "de_list")]
    id: Vec<String>,
    secret: Option<String>,
    secret_file: Option<Spanned<PathBuf>>,
    secret_env: Option<Spanned<String>>,
}

impl TryFrom<RawSecret> for Secret {
    type Error = String;

    fn try_from(r: RawSecret) -> Result<Self, String> {
        let source = match (r.secret, r.secret_file, r.secret_env) {
            (Some(s), None, None) => SecretSource::Inline(decode_secret(&s)?),
            (None, Some(f), None) => SecretSource::File(f),
            (None, None, Some(e)) => SecretSource::Env(e),
            (None, None, None) => {
                return Err("one of `secret`, `secret_file` or `secret_env` is required".into());
            }
            _ => {
                return Err(
                    "only one of `secret`, `secret_file` and `secret_env` may be given".into(),
                );
            }
        };
        Ok(Self { ids: r.id, source })
    }
}

/// A secret as swanctl writes it: `0x…` is hex, `0s…` is base64 (not supported here), anything
/// else is the literal string.
fn decode_secret(s: &str) -> Result<SecretBytes, String> {
    let b = if let Some(h) = s.strip_prefix("0x") {
        hex::decode(h).map_err(|e| format!("bad hex secret: {e}"))?
    } else if s.starts_with("0s") {
        return Err("base64 secrets (0s…) are not supported; use 0x hex".into());
    } else {
        s.as_bytes().to_vec()
    };
    if b.is_empty() {
        return Err("empty secret".into());
    }
    Ok(SecretBytes::new(b))
}

/// Direction of a manual SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManualDirection {
    /// We receive with this SPI.
    In,
    /// We send with this SPI.
    Out,
}

/// `[[manual_sa]]`: one statically keyed ESP SA (like `ip xfrm state add … aead rfc4106`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawManualSa")]
pub struct ManualSa {
    /// In or out.
    pub direction: ManualDirection,
    /// The SPI on the wire (≥ 256).
    pub spi: Spi,
    /// The AEAD transform.
    pub alg: AeadAlgorithm,
    /// Key ‖ 4-octet salt.
    pub key: SecretBytes,
    /// Tunnel (default) or transport.
    pub mode: Mode,
    /// Our outer address.
    pub local_addr: IpAddr,
    /// The peer's outer address.
    pub remote_addr: IpAddr,
    /// Our UDP encapsulation port (default 4500).
    pub local_port: u16,
    /// The peer's UDP encapsulation port (default 4500).
    pub remote_port: u16,
    /// Inner selectors on our side.
    pub local_ts: Vec<TrafficSelector>,
    /// Inner selectors on the peer's side.
    pub remote_ts: Vec<TrafficSelector>,
    /// Anti-replay window (inbound; default 1024, 0 disables).
    pub replay_window: u32,
    /// Extended sequence numbers.
    pub esn: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManualSa {
    direction: ManualDirection,
    spi: u32,
    #[serde(deserialize_with = "de_esp_alg")]
    esp: AeadAlgorithm,
    #[serde(deserialize_with = "de_hex_key")]
    key: SecretBytes,
    #[serde(default, deserialize_with = "de_mode")]
    mode: Option<Mode>,
    local_addr: IpAddr,
    remote_addr: IpAddr,
    #[serde(default = "default_encap")]
    encap: bool,
    #[serde(default = "default_natt_port")]
    local_port: u16,
    #[serde(default = "default_natt_port")]
    remote_port: u16,
    #[serde(default, deserialize_with = "de_ts_list")]
    local_ts: Vec<TrafficSelector>,
    #[serde(default, deserialize_with = "de_ts_list")]
    remote_ts: Vec<TrafficSelector>,
    #[serde(default = "default_replay_window")]
    replay_window: u32,
    #[serde(default)]
    esn: bool,
}

fn default_encap() -> bool {
    true
}

fn default_natt_port() -> u16 {
    ipsec_core::natt::NATT_PORT
}

fn default_replay_window() -> u32 {
    ipsec_core::sa::DEFAULT_REPLAY_WINDOW
}

impl TryFrom<RawManualSa> for ManualSa {
    type Error = String;

    fn try_from(r: RawManualSa) -> Result<Self, String> {
        let spi = Spi(r.spi);
        if !spi.is_assignable() {
            return Err(format!(
                "spi {:#x} is reserved (must be at least 256)",
                r.spi
            ));
        }
        if r.key.len() != r.esp.keymat_len() {
            return Err(format!(
                "key has {} octets; {} needs {} (key ‖ 4-octet salt)",
                r.key.len(),
                alg_name(r.esp),
                r.esp.keymat_len()
            ));
        }
        if !r.encap {
            return Err(
                "raw ESP (IP protocol 50) is not supported by ipsec-peer; use encap = true".into(),
            );
        }
        if r.local_addr.is_ipv4() != r.remote_addr.is_ipv4() {
            return Err("local_addr and remote_addr are of different families".into());
        }
        if r.local_ts.is_empty() || r.remote_ts.is_empty() {
            return Err("local_ts and remote_ts are required for a manual SA".into());
        }
        Ok(Self {
            direction: r.direction,
            spi,
            alg: r.esp,
            key: r.key,
            mode: r.mode.unwrap_or(Mode::Tunnel),
            local_addr: r.local_addr,
            remote_addr: r.remote_addr,
            local_port: r.local_port,
            remote_port: r.remote_port,
            local_ts: r.local_ts,
            remote_ts: r.remote_ts,
            replay_window: r.replay_window,
            esn: r.esn,
        })
    }
}

/// The strongSwan keyword of an AEAD ESP transform.
pub fn alg_name(alg: AeadAlgorithm) -> &'static str {
    match alg {
        AeadAlgorithm::Aes128Gcm => "aes128gcm16",
        AeadAlgorithm::Aes256Gcm => "aes256gcm16",
        AeadAlgorithm::ChaCha20Poly1305 => "chacha20poly1305",
    }
}

/// An address with a prefix length (`fd01::1/64`; without `/len` the full width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl FromStr for IpPrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (a, l) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("bad IP address {a:?} in {s:?}"))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let len = if l.is_empty() {
            width
        } else {
            l.parse::<u8>()
                .ok()
                .filter(|&n| n <= width)
                .ok_or_else(|| format!("bad prefix length {l:?} in {s:?}"))?
        };
        Ok(Self { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Parses swanctl durations: `90` (seconds), `15s`, `90m`, `1h`, `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (expected e.g. \"15s\", \"90m\", \"1h\")"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        u => {
            return Err(format!(
                "bad duration unit {u:?} in {s:?} (use s, m, h or d)"
            ));
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} too large"))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

// ---- serde helpers ---------------------------------------------------------------------

/// A list given either as a TOML array or as swanctl's comma-separated string.
fn de_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStrOrDe<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: FromStrOrDe<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list, or a comma-separated string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<T>, E> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| T::from_text(p).map_err(E::custom))
                .collect()
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(T::from_text(s.trim()).map_err(de::Error::custom)?);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// Types that [`de_list`] can produce from one text item.
trait FromStrOrDe<'de>: Sized {
    fn from_text(s: &str) -> Result<Self, String>;
}

impl FromStrOrDe<'_> for String {
    fn from_text(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
}

impl FromStrOrDe<'_> for IpAddr {
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse().map_err(|_| format!("bad IP address {s:?}"))
    }
}

impl FromStrOrDe<'_> for IpPrefix {
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

/// A traffic selector item; `dynamic` yields nothing (the outer address is used).
struct TsItem(Option<TrafficSelector>);

impl FromStrOrDe<'_> for TsItem {
    fn from_text(s: &str) -> Result<Self, String> {
        if s == "dynamic" {
            return Ok(Self(None));
        }
        s.parse()
            .map(|t| Self(Some(t)))
            .map_err(|e| format!("bad traffic selector: {e}"))
    }
}

fn de_ts_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TrafficSelector>, D::Error> {
    Ok(de_list::<D, TsItem>(d)?
        .into_iter()
        .filter_map(|t| t.0)
        .collect())
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"15s\", \"90m\", \"1h\" or seconds as an integer")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            parse_duration(s).map(Some).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            u64::try_from(n)
                .map(|n| Some(Duration::from_secs(n)))
                .map_err(|_| E::custom("a duration cannot be negative"))
        }
    }
    d.deserialize_any(V)
}

fn de_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
    match String::deserialize(d)?.as_str() {
        "tunnel" => Ok(Some(Mode::Tunnel)),
        // The library does transport mode; this peer cannot: its UDP sockets do not hand it
        // the outer IP header that transport-mode ESP protects and must rebuild.
        "transport" => Err(de::Error::custom(
            "transport mode is not supported by ipsec-peer (it carries ESP in UDP sockets, \
             which do not deliver the outer IP header); use \"tunnel\"",
        )),
        m => Err(de::Error::custom(format!(
            "bad mode {m:?} (expected \"tunnel\" or \"transport\")"
        ))),
    }
}

fn de_version<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    match i64::deserialize(d)? {
        2 => Ok(2),
        v => Err(de::Error::custom(format!(
            "IKE version {v} is not supported (only 2)"
        ))),
    }
}

fn de_ifname<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() || s.len() > 15 || s.contains(['/', ' ', '\0']) {
        return Err(de::Error::custom(format!(
            "bad interface name {s:?} (1 to 15 octets, no '/' or spaces)"
        )));
    }
    Ok(s)
}

fn de_mtu<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let m = u16::deserialize(d)?;
    if m < 576 {
        return Err(de::Error::custom(format!("mtu {m} is below 576")));
    }
    Ok(m)
}

fn de_esp_alg<'de, D: Deserializer<'de>>(d: D) -> Result<AeadAlgorithm, D::Error> {
    match String::deserialize(d)?.as_str() {
        "aes128gcm16" | "aes128gcm128" => Ok(AeadAlgorithm::Aes128Gcm),
        "aes256gcm16" | "aes256gcm128" => Ok(AeadAlgorithm::Aes256Gcm),
        "chacha20poly1305" => Ok(AeadAlgorithm::ChaCha20Poly1305),
        a => Err(de::Error::custom(format!(
            "unsupported ESP transform {a:?} (expected aes128gcm16, aes256gcm16 or chacha20poly1305)"
        ))),
    }
}

fn de_hex_key<'de, D: Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
    let s = String::deserialize(d)?;
    let h = s.strip_prefix("0x").unwrap_or(&s);
    let h: String = h.chars().filter(|c| *c != ':' && *c != ' ').collect();
    hex::decode(h)
        .map(SecretBytes::new)
        .map_err(|e| de::Error::custom(format!("bad hex key: {e}")))
}

// ---- loading, and locating errors --------------------------------------------------------

impl Config {
    /// Reads, parses and validates `path`, resolving `secret_file` (relative to the file's
    /// directory) and `secret_env`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse_with(path, &src, base, &|k| std::env::var(k).ok())
    }

    /// Parses `src` as if read from `file`; `env` looks up environment variables.
    pub fn parse_with(
        file: &Path,
        src: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let err_at = |span: Option<Range<usize>>, msg: &str| locate(file, src, span, msg);
        let mut cfg: Config = toml::from_str(src).map_err(|e| err_at(e.span(), e.message()))?;

        for secret in cfg.secrets.values_mut() {
            let resolved = match &secret.source {
                SecretSource::File(p) => {
                    let path = base_dir.join(p.get_ref());
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        err_at(
                            Some(p.span()),
                            &format!("cannot read secret file {}: {e}", path.display()),
                        )
                    })?;
                    let text = text.trim_end_matches(['\n', '\r']);
                    decode_secret(text).map_err(|m| err_at(Some(p.span()), &m))?
                }
                SecretSource::Env(v) => {
                    let val = env(v.get_ref()).ok_or_else(|| {
                        err_at(
                            Some(v.span()),
                            &format!("environment variable {} is not set", v.get_ref()),
                        )
                    })?;
                    decode_secret(&val).map_err(|m| err_at(Some(v.span()), &m))?
                }
                SecretSource::Inline(_) | SecretSource::Resolved(_) => continue,
            };
            secret.source = SecretSource::Resolved(resolved);
        }

        cfg.validate().map_err(|m| ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: m.0,
            message: m.1,
        })?;
        Ok(cfg)
    }

    /// Checks across tables.
    fn validate(&self) -> Result<(), (String, String)> {
        let mut seen_in = std::collections::HashSet::new();
        for (i, m) in self.manual_sa.iter().enumerate() {
            if m.direction == ManualDirection::In && !seen_in.insert(m.spi) {
                return Err((
                    format!("manual_sa[{i}].spi"),
                    format!("duplicate inbound SPI {:#x}", m.spi.0),
                ));
            }
        }
        for (name, c) in &self.connections {
            if c.remote_addrs.is_empty() {
                return Err((
                    format!("connections.{name}.remote_addrs"),
                    "at least one remote address is required".into(),
                ));
            }
        }
        Ok(())
    }

    /// Remote selectors that must be routed into the TUN device: every outbound manual SA's
    /// `remote_ts` and every child's `remote_ts`, without duplicates.
    pub fn routed_selectors(&self) -> Vec<TrafficSelector> {
        let mut out: Vec<TrafficSelector> = Vec::new();
        let manual = self
            .manual_sa
            .iter()
            .filter(|m| m.direction == ManualDirection::Out)
            .flat_map(|m| m.remote_ts.iter());
        let children = self
            .connections
            .values()
            .flat_map(|c| c.children.values())
            .flat_map(|ch| ch.remote_ts.iter());
        for ts in manual.chain(children) {
            if !out.contains(ts) {
                out.push(*ts);
            }
        }
        out
    }
}

/// Turns a byte span of `src` into a [`ConfigError`] with line, column and dotted key.
///
/// The key is the innermost table header before the span (`[connections.t.local]`,
/// `[[manual_sa]]` counted as `manual_sa[N]`), followed by the key written on the line of
/// the span (when the span is a value or a key rather than a header).
fn locate(file: &Path, src: &str, span: Option<Range<usize>>, msg: &str) -> ConfigError {
    let Some(span) = span else {
        return ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: msg.to_string(),
        };
    };
    let start = span.start.min(src.len());
    let before = &src[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;

    // The innermost header at or before the span, and [[array]] counts.
    let mut header = String::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut pos = 0;
    let mut stmt_key_line: Option<&str> = None;
    for l in src.split_inclusive('\n') {
        if pos > start {
            break;
        }
        let t = l.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|r| r.split_once("]]")) {
            let name = h.0.trim().to_string();
            let n = counts
                .entry(name.clone())
                .and_modify(|n| *n += 1)
                .or_insert(0);
            header = format!("{name}[{n}]");
            stmt_key_line = None;
        } else if let Some(h) = t.strip_prefix('[').and_then(|r| r.split_once(']')) {
            header = h.0.trim().to_string();
            stmt_key_line = None;
        } else if t.contains('=') && !t.starts_with('#') && !t.starts_with('"') {
            stmt_key_line = Some(l);
        }
        pos += l.len();
    }
    let this_line = &src[line_start..];
    let this_line = this_line.split('\n').next().unwrap_or("");
    let is_header = this_line.trim_start().starts_with('[') && !this_line.contains('=');
    let mut key = header;
    if !is_header {
        // The key of the statement the span belongs to (arrays may span several lines).
        let stmt = if this_line.contains('=') {
            Some(this_line)
        } else {
            stmt_key_line
        };
        let leaf = match stmt {
            Some(l) => l.split('=').next().unwrap_or("").trim().to_string(),
            // Span on a bare key (e.g. an unknown field written as `key = …` is handled
            // above; this is a key alone on a line).
            None => this_line.trim().to_string(),
        };
        if !leaf.is_empty() {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(leaf.trim_matches('"'));
        }
    }
    ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        key,
        message: msg.to_string(),
    }
}

/// The unspecified address of the same family as `a`.
pub fn unspecified_like(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests;

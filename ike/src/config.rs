//! Configuration of an [`crate::Endpoint`]: endpoint-wide knobs, and one [`PeerConfig`] per
//! connection with its [`ChildConfig`]s. Field names follow strongSwan's swanctl.conf where a
//! strongSwan user would look for them.

use core::time::Duration;
use std::net::IpAddr;
use std::sync::Arc;

use ipsec_core::sa::DEFAULT_REPLAY_WINDOW;
use ipsec_core::{Mode, SecretBytes, TrafficSelector};

use crate::message::Identification;
use crate::proposal::ProposalConfig;

/// An IKE identity: the contents of an ID payload (RFC 7296 §3.5).
pub type Identity = Identification;

/// The identity for an address (what strongSwan uses when `id` is not configured).
pub fn identity_from_ip(ip: IpAddr) -> Identity {
    match ip {
        IpAddr::V4(a) => Identification::Ipv4(a),
        IpAddr::V6(a) => Identification::Ipv6(a),
    }
}

/// Parses an identity in strongSwan's notation: an IP address, `@fqdn` or a bare FQDN,
/// `user@domain` (RFC822), `@#hex` (KEY_ID).
pub fn parse_identity(s: &str) -> Result<Identity, String> {
    if s.is_empty() {
        return Err("empty identity".into());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(identity_from_ip(ip));
    }
    if let Some(hex) = s.strip_prefix("@#") {
        if hex.len() % 2 != 0 || hex.is_empty() {
            return Err(format!("KEY_ID {s:?} needs an even number of hex digits"));
        }
        let bytes: Result<Vec<u8>, _> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("non-ASCII"), 16))
            .collect();
        return bytes
            .map(Identification::KeyId)
            .map_err(|_| format!("KEY_ID {s:?} is not hex"));
    }
    if let Some(fqdn) = s.strip_prefix('@') {
        return Ok(Identification::Fqdn(fqdn.to_string()));
    }
    if s.contains('=') {
        return Err(format!(
            "distinguished-name identities ({s:?}) need certificates, which are not supported"
        ));
    }
    if s.contains('@') {
        Ok(Identification::Rfc822(s.to_string()))
    } else {
        Ok(Identification::Fqdn(s.to_string()))
    }
}

/// Formats an identity the way strongSwan logs it.
pub fn display_identity(id: &Identity) -> String {
    match id {
        Identification::Ipv4(a) => a.to_string(),
        Identification::Ipv6(a) => a.to_string(),
        Identification::Fqdn(s) | Identification::Rfc822(s) => s.clone(),
        Identification::KeyId(k) => {
            let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
            format!("@#{hex}")
        }
        Identification::Null => "%null".into(),
        other => format!("<{:?}>", other.id_type()),
    }
}

/// A list of proposals in preference order.
pub type ProposalList = Vec<ProposalConfig>;

/// Retransmission of requests (RFC 7296 §2.1, §2.4).
///
/// The n-th retransmission (n from 1) is sent `initial_timeout * 2^(n-1)` after the previous
/// one, capped at `max_timeout`; after `max_retransmits` retransmissions and one more timeout
/// the peer is declared dead. The defaults (4 s, 5 tries, about 3 minutes in all) are those of
/// strongSwan's `retransmit_timeout`, `retransmit_tries` with a base of 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// Wait before the first retransmission.
    pub initial_timeout: Duration,
    /// Upper bound on any single wait.
    pub max_timeout: Duration,
    /// Retransmissions before giving up.
    pub max_retransmits: u32,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        Self {
            initial_timeout: Duration::from_secs(4),
            max_timeout: Duration::from_secs(64),
            max_retransmits: 5,
        }
    }
}

impl RetransmitConfig {
    /// The wait after the `n`-th transmission (0 = the first send).
    pub fn timeout(&self, n: u32) -> Duration {
        self.initial_timeout
            .saturating_mul(1u32 << n.min(16))
            .min(self.max_timeout)
    }
}

/// Endpoint-wide settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Connections we initiate, and the ones we accept as responder (matched by the peer's
    /// identity in IKE_AUTH, and by its address in IKE_SA_INIT when `remote_addrs` is set).
    pub peers: Vec<Arc<PeerConfig>>,
    /// Retransmission policy for our requests.
    pub retransmit: RetransmitConfig,
    /// Half-open IKE SAs above which IKE_SA_INIT requests must carry a COOKIE (RFC 7296 §2.6).
    /// 0 always demands cookies.
    pub cookie_threshold: usize,
    /// Hard cap on half-open IKE SAs; further IKE_SA_INIT requests are dropped.
    pub half_open_limit: usize,
    /// Cap on half-open IKE SAs from one IP address (checked after the COOKIE, so the
    /// address is not spoofed); further IKE_SA_INIT requests from it are dropped until
    /// some complete or time out (strongSwan's `block_threshold`, 5 there).
    pub half_open_per_ip: usize,
    /// Rotation period of the cookie secret.
    pub cookie_rotation: Duration,
    /// How long a responder keeps a half-open IKE SA waiting for IKE_AUTH.
    pub half_open_timeout: Duration,
    /// Interval of NAT keepalives when we are behind a NAT (RFC 3948 §2.3; strongSwan: 20 s).
    pub nat_keepalive: Duration,
    /// Minimum length of a pre-shared key, in octets. RFC 7296 §2.15 asks for keys with as
    /// much entropy as the strongest key negotiated; a short PSK is refused at `connect` and
    /// when a peer configuration is matched.
    pub min_psk_len: usize,
    /// After a rekey of an IKE or Child SA failed (an error notify, an unusable answer, or
    /// no answer to a rekey that then went nowhere), try again after this long less a random
    /// 0–10 %, until the SA's hard lifetime ends it.
    pub rekey_retry: Duration,
    /// How long the inbound ESP SA of a Child SA replaced by a rekey outlives its Delete,
    /// for packets the peer sent on it just before switching that arrive late (strongSwan's
    /// `delete_rekeyed_delay`, 5 s there). Zero removes it with the outbound SA.
    pub rekeyed_inbound_grace: Duration,
    /// After TEMPORARY_FAILURE (RFC 7296 §2.25), retry after this long plus a random
    /// 0–100 % of it.
    pub retry_delay: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            peers: Vec::new(),
            retransmit: RetransmitConfig::default(),
            cookie_threshold: 30,
            half_open_limit: 10_000,
            half_open_per_ip: 5,
            cookie_rotation: Duration::from_secs(120),
            half_open_timeout: Duration::from_secs(30),
            nat_keepalive: Duration::from_secs(20),
            min_psk_len: 20,
            rekey_retry: Duration::from_secs(30),
            rekeyed_inbound_grace: Duration::from_secs(5),
            retry_delay: Duration::from_secs(2),
        }
    }
}

/// One connection (swanctl.conf `connections.<name>`).
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Connection name, for logs and events.
    pub name: String,
    /// Our identity (`local.id`).
    pub local_id: Identity,
    /// The identity the peer must prove (`remote.id`); `None` accepts any identity that
    /// knows the PSK.
    pub remote_id: Option<Identity>,
    /// Pre-shared key.
    pub psk: SecretBytes,
    /// Peer addresses this connection applies to as a responder (`remote_addrs`); empty
    /// matches any.
    pub remote_addrs: Vec<IpAddr>,
    /// IKE proposals in preference order (`proposals`).
    pub ike_proposals: ProposalList,
    /// Always use UDP encapsulation, even without a NAT (`encap = yes`; strongSwan's
    /// userspace data plane requires it).
    pub force_encap: bool,
    /// Liveness check after this much silence from the peer (`dpd_delay`); `None` disables.
    pub dpd_delay: Option<Duration>,
    /// Send INITIAL_CONTACT in IKE_AUTH (RFC 7296 §2.4) so the peer drops stale SAs.
    pub initial_contact: bool,
    /// Soft lifetime of the IKE SA: rekey it after this long, less a random 0–10 %
    /// (RFC 7296 §2.8; swanctl's `rekey_time`, 4 h there). `None` never rekeys.
    pub rekey_time: Option<Duration>,
    /// Hard lifetime of the IKE SA, from its establishment: one that could not be rekeyed
    /// by then is deleted with its Child SAs (swanctl's `rekey_time` + `over_time`). `None`:
    /// no limit. Should exceed `rekey_time` by a few [`EndpointConfig::rekey_retry`]
    /// periods.
    pub life_time: Option<Duration>,
    /// Child SAs: the first is negotiated in IKE_AUTH when we initiate.
    pub children: Vec<ChildConfig>,
}

/// One Child SA configuration (swanctl.conf `children.<name>`).
#[derive(Debug, Clone)]
pub struct ChildConfig {
    /// Child name.
    pub name: String,
    /// Our traffic selectors (`local_ts`).
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's traffic selectors (`remote_ts`).
    pub remote_ts: Vec<TrafficSelector>,
    /// ESP proposals (`esp_proposals`); a KE transform in them asks for PFS on rekey.
    pub esp_proposals: ProposalList,
    /// Tunnel or transport (`mode`).
    pub mode: Mode,
    /// Soft lifetime: rekey after this long (`rekey_time`).
    pub rekey_time: Option<Duration>,
    /// Hard lifetime: delete after this long (`life_time`).
    pub life_time: Option<Duration>,
    /// Anti-replay window in packets (`replay_window`).
    pub replay_window: u32,
}

impl ChildConfig {
    /// A tunnel-mode child with strongSwan's defaults (rekey after 1 h, life 1.1 h).
    pub fn new(
        name: &str,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
        esp_proposals: ProposalList,
    ) -> Self {
        Self {
            name: name.to_string(),
            local_ts,
            remote_ts,
            esp_proposals,
            mode: Mode::Tunnel,
            rekey_time: Some(Duration::from_secs(3600)),
            life_time: Some(Duration::from_secs(3960)),
            replay_window: DEFAULT_REPLAY_WINDOW,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_like_strongswan() {
        let p = |s: &str| parse_identity(s).unwrap();
        assert_eq!(
            p("fd00::1"),
            Identification::Ipv6("fd00::1".parse().unwrap())
        );
        assert_eq!(
            p("@vpn.example"),
            Identification::Fqdn("vpn.example".into())
        );
        assert_eq!(p("gw.example"), Identification::Fqdn("gw.example".into()));
        assert_eq!(
            p("a@b.example"),
            Identification::Rfc822("a@b.example".into())
        );
        assert_eq!(p("@#0a0B"), Identification::KeyId(vec![10, 11]));
        assert!(parse_identity("@#0").is_err());
        assert!(parse_identity("@#zz").is_err());
        assert!(parse_identity("").is_err());
        assert!(parse_identity("C=CH, O=x").is_err());
        for id in ["10.0.0.1", "fd00::2", "@#00ff", "x.example", "u@x.example"] {
            let shown = display_identity(&p(id));
            assert_eq!(p(&shown), p(id), "{id} shown as {shown}");
        }
    }

    #[test]
    fn retransmit_backoff() {
        let r = RetransmitConfig::default();
        assert_eq!(r.timeout(0), Duration::from_secs(4));
        assert_eq!(r.timeout(1), Duration::from_secs(8));
        assert_eq!(r.timeout(4), Duration::from_secs(64));
        assert_eq!(r.timeout(30), Duration::from_secs(64));
    }
}

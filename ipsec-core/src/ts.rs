//! Traffic selectors (RFC 7296 §3.13.1) and their narrowing (RFC 7296 §2.9).
//!
//! A [`TrafficSelector`] is an address range of one family, an IP protocol (0 = any) and a
//! port range. For ICMP and ICMPv6 the "ports" carry type and code as RFC 4301 §4.4.1.1
//! describes (type in the high octet); a start port of 65535 with an end port of 0 is the
//! OPAQUE selector that matches only packets whose ports are unavailable, such as non-first
//! fragments.
//!
//! [`TrafficSelector::intersect`] is the narrowing operation: the selector that matches
//! exactly the packets both inputs match. It is idempotent and commutative, and its result is
//! contained in both inputs; the property tests below check exactly that algebra.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TS type of an IPv4 address range (RFC 7296 §3.13.1).
pub const TS_IPV4_ADDR_RANGE: u8 = 7;
/// TS type of an IPv6 address range (RFC 7296 §3.13.1).
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// The port part of a selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortRange {
    /// Inclusive range; `0..=65535` is "any port".
    Range(u16, u16),
    /// OPAQUE (start 65535, end 0): ports are not available (RFC 4301 §4.4.1).
    Opaque,
}

impl PortRange {
    /// Every port.
    pub const ANY: Self = Self::Range(0, u16::MAX);

    /// Wire form: (start port, end port).
    pub fn to_wire(self) -> (u16, u16) {
        match self {
            Self::Range(a, b) => (a, b),
            Self::Opaque => (u16::MAX, 0),
        }
    }

    /// From the wire form; any start > end other than (65535, 0) is invalid.
    pub fn from_wire(start: u16, end: u16) -> Option<Self> {
        match (start, end) {
            (u16::MAX, 0) => Some(Self::Opaque),
            (a, b) if a <= b => Some(Self::Range(a, b)),
            _ => None,
        }
    }

    fn intersect(self, other: Self) -> Option<Self> {
        match (self, other) {
            (Self::Range(a, b), Self::Range(c, d)) => {
                let (lo, hi) = (a.max(c), b.min(d));
                (lo <= hi).then_some(Self::Range(lo, hi))
            }
            (Self::Opaque, Self::Opaque) => Some(Self::Opaque),
            (Self::Opaque, r) | (r, Self::Opaque) => (r == Self::ANY).then_some(Self::Opaque),
        }
    }

    /// Does a packet with these ports (or `None` if its ports are unavailable) match?
    pub fn matches(self, port: Option<u16>) -> bool {
        match (self, port) {
            (Self::Range(a, b), Some(p)) => a <= p && p <= b,
            (Self::Range(a, b), None) => a == 0 && b == u16::MAX,
            (Self::Opaque, None) => true,
            (Self::Opaque, Some(_)) => false,
        }
    }
}

/// One traffic selector: addresses `start..=end` of one family, protocol, ports.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    start: IpAddr,
    end: IpAddr,
    /// IP protocol number, 0 for any.
    pub ip_protocol: u8,
    /// Ports (or ICMP type/code).
    pub ports: PortRange,
}

/// Errors building a selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    /// Start and end address are of different families.
    #[error("start and end address families differ")]
    MixedFamilies,
    /// Start address above end address.
    #[error("start address above end address")]
    EmptyRange,
    /// A prefix length beyond the address width.
    #[error("prefix length {0} too long")]
    BadPrefix(u8),
    /// Text that is not `addr`, `addr/len` or `addr-addr`, optionally with `[proto/port]`.
    #[error("cannot parse traffic selector {0:?}")]
    Syntax(String),
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(v4: bool, x: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(x as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(x))
    }
}

impl TrafficSelector {
    /// A selector for addresses `start..=end` (same family, start ≤ end), any protocol and port.
    pub fn new(start: IpAddr, end: IpAddr) -> Result<Self, TsError> {
        if start.is_ipv4() != end.is_ipv4() {
            return Err(TsError::MixedFamilies);
        }
        if to_u128(start) > to_u128(end) {
            return Err(TsError::EmptyRange);
        }
        Ok(Self {
            start,
            end,
            ip_protocol: 0,
            ports: PortRange::ANY,
        })
    }

    /// A selector for the subnet `addr/prefix` (host bits ignored), any protocol and port.
    pub fn from_prefix(addr: IpAddr, prefix: u8) -> Result<Self, TsError> {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > width {
            return Err(TsError::BadPrefix(prefix));
        }
        let host_bits = u32::from(width - prefix);
        let full: u128 = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        let host_mask = if host_bits == 0 {
            0
        } else {
            full >> (u32::from(width) - host_bits)
        };
        let a = to_u128(addr) & !host_mask & full;
        Self::new(
            from_u128(addr.is_ipv4(), a),
            from_u128(addr.is_ipv4(), a | host_mask),
        )
    }

    /// Every IPv4 address (`0.0.0.0/0`).
    pub fn any_v4() -> Self {
        Self::from_prefix(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).expect("valid")
    }

    /// Every IPv6 address (`::/0`).
    pub fn any_v6() -> Self {
        Self::from_prefix(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).expect("valid")
    }

    /// Restricts the protocol and ports.
    pub fn with_protocol(mut self, ip_protocol: u8, ports: PortRange) -> Self {
        self.ip_protocol = ip_protocol;
        self.ports = ports;
        self
    }

    /// First address.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// Last address.
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// TS type on the wire: [`TS_IPV4_ADDR_RANGE`] or [`TS_IPV6_ADDR_RANGE`].
    pub fn ts_type(&self) -> u8 {
        if self.start.is_ipv4() {
            TS_IPV4_ADDR_RANGE
        } else {
            TS_IPV6_ADDR_RANGE
        }
    }

    /// True for an IPv4 selector.
    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }

    /// Narrowing (RFC 7296 §2.9): the selector matching exactly what both match, if any.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        if self.is_ipv4() != other.is_ipv4() {
            return None;
        }
        let lo = to_u128(self.start).max(to_u128(other.start));
        let hi = to_u128(self.end).min(to_u128(other.end));
        if lo > hi {
            return None;
        }
        let ip_protocol = match (self.ip_protocol, other.ip_protocol) {
            (0, p) | (p, 0) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let ports = self.ports.intersect(other.ports)?;
        let v4 = self.is_ipv4();
        Some(Self {
            start: from_u128(v4, lo),
            end: from_u128(v4, hi),
            ip_protocol,
            ports,
        })
    }

    /// Is every packet matched by `other` also matched by `self`?
    pub fn contains(&self, other: &Self) -> bool {
        self.intersect(other).as_ref() == Some(other)
    }

    /// Does a packet with this address, protocol and port (None = unavailable) match?
    #[inline]
    pub fn matches(&self, addr: IpAddr, ip_protocol: u8, port: Option<u16>) -> bool {
        if addr.is_ipv4() != self.is_ipv4() {
            return false;
        }
        let a = to_u128(addr);
        a >= to_u128(self.start)
            && a <= to_u128(self.end)
            && (self.ip_protocol == 0 || self.ip_protocol == ip_protocol)
            && (self.ip_protocol == 0 && self.ports == PortRange::ANY || self.ports.matches(port))
    }
}

/// Narrows a list of proposed selectors against a list of configured ones (RFC 7296 §2.9):
/// every non-empty pairwise intersection, without duplicates, in the proposer's order.
pub fn narrow(
    proposed: &[TrafficSelector],
    configured: &[TrafficSelector],
) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for p in proposed {
        for c in configured {
            if let Some(i) = p.intersect(c)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }
    out
}

impl fmt::Debug for TrafficSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TrafficSelector {
    /// strongSwan's notation: `fd01::/64`, `10.0.0.1..10.0.0.9`, with `[proto/port]` if set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = (to_u128(self.start), to_u128(self.end));
        let width = if self.is_ipv4() { 32 } else { 128 };
        let span = hi ^ lo;
        let prefix = width - (128 - span.leading_zeros());
        let host_mask = if prefix == width {
            0
        } else {
            (!0u128) >> (128 - (width - prefix))
        };
        if lo & host_mask == 0 && hi == lo | host_mask {
            write!(f, "{}/{}", self.start, prefix)?;
        } else {
            write!(f, "{}..{}", self.start, self.end)?;
        }
        if self.ip_protocol != 0 || self.ports != PortRange::ANY {
            write!(f, "[{}", self.ip_protocol)?;
            match self.ports {
                PortRange::Range(0, u16::MAX) => {}
                PortRange::Range(a, b) if a == b => write!(f, "/{a}")?,
                PortRange::Range(a, b) => write!(f, "/{a}-{b}")?,
                PortRange::Opaque => write!(f, "/OPAQUE")?,
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

impl core::str::FromStr for TrafficSelector {
    type Err = TsError;

    /// Parses `addr`, `addr/len`, `addr..addr` or `addr-addr`, optionally followed by
    /// `[proto]` or `[proto/port]` / `[proto/lo-hi]` with a numeric protocol or
    /// `tcp`/`udp`/`icmp`/`ipv6-icmp`, as swanctl.conf's `local_ts` / `remote_ts` do.
    fn from_str(s: &str) -> Result<Self, TsError> {
        let bad = || TsError::Syntax(s.to_string());
        let s = s.trim();
        let (net, sel) = match s.find('[') {
            Some(i) => {
                let rest = s[i + 1..].strip_suffix(']').ok_or_else(bad)?;
                (&s[..i], Some(rest))
            }
            None => (s, None),
        };
        let parse_ip = |t: &str| t.trim().parse::<IpAddr>().map_err(|_| bad());
        let mut ts = if let Some((a, l)) = net.split_once('/') {
            Self::from_prefix(parse_ip(a)?, l.parse().map_err(|_| bad())?)?
        } else if let Some((a, b)) = net.split_once("..").or_else(|| net.split_once('-')) {
            Self::new(parse_ip(a)?, parse_ip(b)?)?
        } else {
            let a = parse_ip(net)?;
            Self::new(a, a)?
        };
        if let Some(sel) = sel {
            let (proto, port) = match sel.split_once('/') {
                Some((p, q)) => (p, Some(q)),
                None => (sel, None),
            };
            ts.ip_protocol = match proto {
                "" | "any" => 0,
                "tcp" => 6,
                "udp" => 17,
                "icmp" => 1,
                "ipv6-icmp" | "icmp6" | "icmpv6" => 58,
                n => n.parse().map_err(|_| bad())?,
            };
            ts.ports = match port {
                None | Some("") | Some("any") => PortRange::ANY,
                Some("OPAQUE") | Some("opaque") => PortRange::Opaque,
                Some(p) => {
                    let (a, b) = p.split_once('-').unwrap_or((p, p));
                    let a: u16 = a.parse().map_err(|_| bad())?;
                    let b: u16 = b.parse().map_err(|_| bad())?;
                    PortRange::from_wire(a, b)
                        .filter(|r| *r != PortRange::Opaque)
                        .ok_or_else(bad)?
                }
            };
        }
        Ok(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> TrafficSelector {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(ts("fd01::/64").to_string(), "fd01::/64");
        assert_eq!(ts("fd01::1").to_string(), "fd01::1/128");
        assert_eq!(ts("10.1.2.3/16").to_string(), "10.1.0.0/16");
        assert_eq!(ts("10.0.0.1-10.0.0.9").to_string(), "10.0.0.1..10.0.0.9");
        assert_eq!(ts("0.0.0.0/0[tcp/443]").to_string(), "0.0.0.0/0[6/443]");
        assert_eq!(
            ts("::/0[udp/1000-2000]").ports,
            PortRange::Range(1000, 2000)
        );
        assert_eq!(ts("::/0[17/OPAQUE]").ports, PortRange::Opaque);
        for bad in [
            "fd01::/129",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-fd00::1",
            "x",
            "::/0[tcp/9-1]",
            "::/0[tcp",
        ] {
            assert!(bad.parse::<TrafficSelector>().is_err(), "{bad}");
        }
    }

    #[test]
    fn narrowing_examples() {
        let a = ts("fd00::/8");
        let b = ts("fd01::1/128[tcp/80]");
        assert_eq!(a.intersect(&b), Some(b));
        assert_eq!(ts("fd01::/64").intersect(&ts("10.0.0.0/8")), None);
        assert_eq!(ts("::/0[tcp]").intersect(&ts("::/0[udp]")), None);
        assert_eq!(ts("::/0[17/OPAQUE]").intersect(&ts("::/0[17/53]")), None);
        assert_eq!(
            ts("::/0[17/OPAQUE]").intersect(&ts("::/0[17]")),
            Some(ts("::/0[17/OPAQUE]"))
        );
        let n = narrow(
            &[ts("fd01::/64"), ts("10.0.0.0/8")],
            &[ts("fd01::5/128"), ts("10.1.0.0/16")],
        );
        assert_eq!(n, vec![ts("fd01::5/128"), ts("10.1.0.0/16")]);
    }

    #[test]
    fn packet_matching() {
        let t = ts("fd01::/64[tcp/80-90]");
        let a: IpAddr = "fd01::7".parse().unwrap();
        assert!(t.matches(a, 6, Some(80)));
        assert!(!t.matches(a, 6, Some(91)));
        assert!(!t.matches(a, 17, Some(80)));
        assert!(!t.matches(a, 6, None));
        assert!(!t.matches("fd02::1".parse().unwrap(), 6, Some(80)));
        assert!(ts("::/0").matches(a, 44, None));
        assert!(ts("::/0[6/OPAQUE]").matches(a, 6, None));
    }

    fn arb_ts() -> impl Strategy<Value = TrafficSelector> {
        let v6 = (any::<u8>(), any::<u8>(), 0u8..=128).prop_map(|(a, b, len)| {
            let addr = Ipv6Addr::new(
                0xfd00 | u16::from(a % 4),
                u16::from(b % 4),
                0,
                0,
                0,
                0,
                0,
                u16::from(b),
            );
            TrafficSelector::from_prefix(IpAddr::V6(addr), len.min(128)).unwrap()
        });
        let v4 = (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| {
            let (lo, hi) = (a.min(b), a.max(b));
            let s = Ipv4Addr::new(10, 0, c % 3, lo);
            let e = Ipv4Addr::new(10, 0, c % 3, hi);
            TrafficSelector::new(IpAddr::V4(s), IpAddr::V4(e)).unwrap()
        });
        let ports = prop_oneof![
            Just(PortRange::ANY),
            Just(PortRange::Opaque),
            (0u16..100, 0u16..100).prop_map(|(a, b)| PortRange::Range(a.min(b), a.max(b))),
        ];
        (
            prop_oneof![v6, v4],
            prop::sample::select(vec![0u8, 6, 17]),
            ports,
        )
            .prop_map(|(t, p, ports)| t.with_protocol(p, ports))
    }

    proptest! {
        #[test]
        fn intersection_is_idempotent(a in arb_ts()) {
            prop_assert_eq!(a.intersect(&a), Some(a));
        }

        #[test]
        fn intersection_is_commutative(a in arb_ts(), b in arb_ts()) {
            prop_assert_eq!(a.intersect(&b), b.intersect(&a));
        }

        #[test]
        fn intersection_is_within_both(a in arb_ts(), b in arb_ts()) {
            if let Some(i) = a.intersect(&b) {
                prop_assert!(a.contains(&i) && b.contains(&i));
                // Associativity with a third operand follows for ranges; check the common case.
                prop_assert_eq!(i.intersect(&a), Some(i));
            }
        }

        #[test]
        fn a_packet_matches_the_intersection_iff_it_matches_both(
            a in arb_ts(), b in arb_ts(), last in any::<u8>(), proto in prop::sample::select(vec![6u8, 17, 1]),
            port in prop::option::of(0u16..120),
        ) {
            let addr = if a.is_ipv4() {
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
            } else {
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(last)))
            };
            let both = a.matches(addr, proto, port) && b.matches(addr, proto, port);
            let inter = a.intersect(&b).is_some_and(|i| i.matches(addr, proto, port));
            prop_assert_eq!(both, inter);
        }

        #[test]
        fn display_parse_roundtrip(a in arb_ts()) {
            prop_assert_eq!(a.to_string().parse::<TrafficSelector>().unwrap(), a);
        }
    }
}

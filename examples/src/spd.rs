//! Outbound SA selection: which SA protects a packet read from the TUN device
//! (RFC 4301 §5.1, a tiny SPD of "PROTECT" entries).
//!
//! The table is a short `Vec` scanned in order, first match wins; peers here have a handful
//! of Child SAs. (A longest-prefix trie is the upgrade path if that ever matters.) The inbound
//! check on decrypted packets (RFC 4301 §5.2) is done by the ESP engine itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::TrafficSelector;

/// The selector fields of an IP packet: addresses, protocol and ports (ICMP type/code in the
/// "port" as `type << 8 | code`, RFC 4301 §4.4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSelector {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Source port, or `None` if unavailable (non-first fragment, unknown protocol).
    pub src_port: Option<u16>,
    /// Destination port, or `None`.
    pub dst_port: Option<u16>,
}

fn ports(proto: u8, l4: &[u8]) -> (Option<u16>, Option<u16>) {
    match proto {
        // TCP, UDP, SCTP, UDP-Lite
        6 | 17 | 132 | 136 if l4.len() >= 4 => (
            Some(u16::from_be_bytes([l4[0], l4[1]])),
            Some(u16::from_be_bytes([l4[2], l4[3]])),
        ),
        // ICMP, ICMPv6: type and code
        1 | 58 if l4.len() >= 2 => {
            let tc = u16::from_be_bytes([l4[0], l4[1]]);
            (Some(tc), Some(tc))
        }
        _ => (None, None),
    }
}

/// Parses the selector fields of an IPv4 or IPv6 packet; `None` if it is not one.
pub fn packet_selector(pkt: &[u8]) -> Option<PacketSelector> {
    match pkt.first()? >> 4 {
        4 => {
            if pkt.len() < 20 {
                return None;
            }
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
            let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
            let proto = pkt[9];
            let frag_off = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x1fff;
            let (sp, dp) = if frag_off == 0 && ihl >= 20 && pkt.len() > ihl {
                ports(proto, &pkt[ihl..])
            } else {
                (None, None)
            };
            Some(PacketSelector {
                src: src.into(),
                dst: dst.into(),
                proto,
                src_port: sp,
                dst_port: dp,
            })
        }
        6 => {
            if pkt.len() < 40 {
                return None;
            }
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[8..24]).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[24..40]).ok()?);
            let mut next = pkt[6];
            let mut off = 40;
            let mut ports_known = true;
            // Walk the extension headers (RFC 8200 §4) to the upper-layer header.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let h = pkt.get(off..off + 2)?;
                        next = h[0];
                        off += (usize::from(h[1]) + 1) * 8;
                    }
                    44 => {
                        let h = pkt.get(off..off + 8)?;
                        if u16::from_be_bytes([h[2], h[3]]) >> 3 != 0 {
                            ports_known = false;
                        }
                        next = h[0];
                        off += 8;
                    }
                    _ => break,
                }
            }
            let (sp, dp) = match pkt.get(off..) {
                Some(l4) if ports_known => ports(next, l4),
                _ => (None, None),
            };
            Some(PacketSelector {
                src: src.into(),
                dst: dst.into(),
                proto: next,
                src_port: sp,
                dst_port: dp,
            })
        }
        _ => None,
    }
}

/// One outbound policy: packets from `local` to `remote` go through SA `sa`.
#[derive(Debug, Clone)]
pub struct OutboundPolicy<S> {
    /// Our selectors (inner source).
    pub local: Vec<TrafficSelector>,
    /// The peer's selectors (inner destination).
    pub remote: Vec<TrafficSelector>,
    /// What the caller wants back (the SA handle and where to send).
    pub sa: S,
}

/// An ordered list of outbound policies.
#[derive(Debug, Clone)]
pub struct Spd<S> {
    entries: Vec<OutboundPolicy<S>>,
}

impl<S> Default for Spd<S> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<S> Spd<S> {
    /// Adds a policy; a later one with the same selectors takes precedence (rekeying
    /// switches the outbound SA this way).
    pub fn insert(&mut self, p: OutboundPolicy<S>) {
        self.entries.insert(0, p);
    }

    /// Removes every policy whose `sa` satisfies `f`.
    pub fn remove_where(&mut self, mut f: impl FnMut(&S) -> bool) {
        self.entries.retain(|e| !f(&e.sa));
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The policies, most preferred first.
    pub fn iter(&self) -> impl Iterator<Item = &OutboundPolicy<S>> {
        self.entries.iter()
    }

    /// The SA for an outgoing packet, if any policy matches.
    pub fn lookup(&self, p: &PacketSelector) -> Option<&S> {
        self.entries
            .iter()
            .find(|e| {
                e.local
                    .iter()
                    .any(|t| t.matches(p.src, p.proto, p.src_port))
                    && e.remote
                        .iter()
                        .any(|t| t.matches(p.dst, p.proto, p.dst_port))
            })
            .map(|e| &e.sa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6_packet(src: &str, dst: &str, next: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        p[6] = next;
        p[7] = 64;
        p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(l4);
        p
    }

    fn v4_packet(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    #[test]
    fn parses_v6_and_v4() {
        let p = v6_packet("fd01::1", "fd02::1", 58, &[128, 0, 0, 0]);
        let s = packet_selector(&p).unwrap();
        assert_eq!(s.src, "fd01::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (s.proto, s.src_port, s.dst_port),
            (58, Some(0x8000), Some(0x8000))
        );
        // Hop-by-hop header, then TCP.
        let mut ext = vec![6, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[0x01, 0xbb, 0x00, 0x50]);
        let s = packet_selector(&v6_packet("fd01::1", "fd02::1", 0, &ext)).unwrap();
        assert_eq!((s.proto, s.src_port, s.dst_port), (6, Some(443), Some(80)));
        // Non-first fragment: no ports.
        let frag = [17, 0, 0, 8, 0, 0, 0, 1, 0, 53, 0, 53];
        let s = packet_selector(&v6_packet("fd01::1", "fd02::1", 44, &frag)).unwrap();
        assert_eq!((s.proto, s.src_port), (17, None));
        let s = packet_selector(&v4_packet(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            0,
            &[0, 53, 0, 54],
        ))
        .unwrap();
        assert_eq!((s.src_port, s.dst_port), (Some(53), Some(54)));
        let s = packet_selector(&v4_packet(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            5,
            &[0, 53, 0, 54],
        ))
        .unwrap();
        assert_eq!(s.src_port, None);
        assert!(packet_selector(&[]).is_none());
        assert!(packet_selector(&[0x60; 39]).is_none());
        assert!(packet_selector(&[0x45; 19]).is_none());
        assert!(packet_selector(&[0x20; 60]).is_none());
        // Truncated extension header.
        assert!(packet_selector(&v6_packet("fd01::1", "fd02::1", 0, &[6])).is_none());
    }

    #[test]
    fn lookup_first_match_and_precedence() {
        let ts = |s: &str| s.parse::<TrafficSelector>().unwrap();
        let mut spd = Spd::default();
        spd.insert(OutboundPolicy {
            local: vec![ts("fd01::/64")],
            remote: vec![ts("fd02::/64")],
            sa: 1,
        });
        spd.insert(OutboundPolicy {
            local: vec![ts("fd01::/64")],
            remote: vec![ts("fd02::1/128[tcp]")],
            sa: 2,
        });
        let icmp = packet_selector(&v6_packet("fd01::1", "fd02::1", 58, &[128, 0])).unwrap();
        let tcp = packet_selector(&v6_packet("fd01::1", "fd02::1", 6, &[0, 1, 0, 2])).unwrap();
        let other = packet_selector(&v6_packet("fd01::1", "fd03::1", 6, &[0, 1, 0, 2])).unwrap();
        assert_eq!(spd.lookup(&icmp), Some(&1));
        assert_eq!(spd.lookup(&tcp), Some(&2));
        assert_eq!(spd.lookup(&other), None);
        spd.remove_where(|s| *s == 2);
        assert_eq!(spd.lookup(&tcp), Some(&1));
        assert_eq!(spd.len(), 1);
        assert!(!spd.is_empty());
    }
}

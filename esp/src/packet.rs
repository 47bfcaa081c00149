//! IP header walking and writing: IPv4 (RFC 791), IPv6 and its extension headers
//! (RFC 8200 §4), UDP (RFC 768) with the Internet checksum (RFC 1071), and the selector
//! fields of a packet (RFC 4301 §4.4.1.1: addresses, next layer protocol, ports, ICMP
//! type/code; ports are unavailable in non-first fragments).
//!
//! Everything here reads wire data with bounds-checked accessors and returns `None` on
//! malformed input; nothing panics on packet bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv6 Hop-by-Hop Options header (RFC 8200 §4.3).
pub const IPPROTO_HOPOPTS: u8 = 0;
/// ICMP for IPv4.
pub const IPPROTO_ICMP: u8 = 1;
/// IPv4-in-IP encapsulation: the Next Header of a tunnel-mode ESP packet carrying IPv4.
pub const IPPROTO_IPIP: u8 = 4;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 encapsulation: the Next Header of a tunnel-mode ESP packet carrying IPv6.
pub const IPPROTO_IPV6: u8 = 41;
/// IPv6 Routing header (RFC 8200 §4.4).
pub const IPPROTO_ROUTING: u8 = 43;
/// IPv6 Fragment header (RFC 8200 §4.5).
pub const IPPROTO_FRAGMENT: u8 = 44;
/// ESP (RFC 4303).
pub const IPPROTO_ESP: u8 = 50;
/// AH (RFC 4302).
pub const IPPROTO_AH: u8 = 51;
/// ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// "No Next Header": the Next Header of a dummy (TFC) ESP packet (RFC 4303 §2.6).
pub const IPPROTO_NONE: u8 = 59;
/// IPv6 Destination Options header (RFC 8200 §4.6).
pub const IPPROTO_DSTOPTS: u8 = 60;
/// SCTP.
pub const IPPROTO_SCTP: u8 = 132;
/// UDP-Lite.
pub const IPPROTO_UDPLITE: u8 = 136;

/// Length of a fixed IPv4 header without options.
pub(crate) const IPV4_HDR_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub(crate) const IPV6_HDR_LEN: usize = 40;
/// Length of a UDP header.
pub(crate) const UDP_HDR_LEN: usize = 8;

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Ones' complement sum of `data` (RFC 1071) as an unfolded accumulator. Odd trailing bytes
/// are padded with zero on the right, so only the last part of a checksum may be odd.
#[inline]
pub(crate) fn sum_words(data: &[u8]) -> u64 {
    let mut s: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        s += (w >> 32) + (w & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    let w = u64::from_be_bytes(tail);
    s + (w >> 32) + (w & 0xffff_ffff)
}

/// Folds an accumulator into the 16-bit ones' complement checksum field value.
#[inline]
pub(crate) fn fold_checksum(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The IPv4 header checksum over `hdr` (whose checksum field must be zero).
pub(crate) fn ipv4_checksum(hdr: &[u8]) -> u16 {
    fold_checksum(sum_words(hdr))
}

/// Writes the UDP checksum of `udp` (header with zero checksum field followed by payload)
/// sent from `src` to `dst` (pseudo-header of RFC 768 / RFC 8200 §8.1).
pub(crate) fn udp_checksum(src: &IpAddr, dst: &IpAddr, udp: &[u8]) -> u16 {
    let len = udp.len() as u64;
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum_words(&s.octets()) + sum_words(&d.octets()) + u64::from(IPPROTO_UDP) + len
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum_words(&s.octets()) + sum_words(&d.octets()) + u64::from(IPPROTO_UDP) + len
        }
        _ => 0,
    };
    let c = fold_checksum(pseudo + sum_words(udp));
    // A computed zero is sent as all ones (RFC 768; mandatory for IPv6, RFC 8200 §8.1).
    if c == 0 { 0xffff } else { c }
}

/// Writes a 20-octet IPv4 header without options into `h[..20]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_ipv4_header(
    h: &mut [u8],
    tos: u8,
    total_len: u16,
    id: u16,
    ttl: u8,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    h[0] = 0x45;
    h[1] = tos;
    put16(h, 2, total_len);
    put16(h, 4, id);
    put16(h, 6, 0);
    h[8] = ttl;
    h[9] = proto;
    put16(h, 10, 0);
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = ipv4_checksum(&h[..IPV4_HDR_LEN]);
    put16(h, 10, c);
}

/// Writes a 40-octet IPv6 header into `h[..40]` (flow label 0).
pub(crate) fn write_ipv6_header(
    h: &mut [u8],
    traffic_class: u8,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    h[0] = 0x60 | (traffic_class >> 4);
    h[1] = traffic_class << 4;
    h[2] = 0;
    h[3] = 0;
    put16(h, 4, payload_len);
    h[6] = next_header;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
}

/// The IPv4 header of `pkt`, validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ipv4Info {
    /// Header length including options.
    pub ihl: usize,
    /// Total length field.
    pub total_len: usize,
    /// Protocol field.
    pub proto: u8,
    /// Fragment offset in 8-octet units.
    pub frag_offset: u16,
    /// More Fragments flag.
    pub more_fragments: bool,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

/// Parses and validates an IPv4 header (version, IHL, total length ≤ `pkt.len()`).
#[inline]
pub(crate) fn parse_ipv4(pkt: &[u8]) -> Option<Ipv4Info> {
    let b0 = *pkt.first()?;
    if b0 >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(b0 & 0x0f) * 4;
    let total_len = usize::from(be16(pkt, 2)?);
    if ihl < IPV4_HDR_LEN || total_len < ihl || total_len > pkt.len() {
        return None;
    }
    let frag = be16(pkt, 6)?;
    let src: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
    let dst: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
    Some(Ipv4Info {
        ihl,
        total_len,
        proto: *pkt.get(9)?,
        frag_offset: frag & 0x1fff,
        more_fragments: frag & 0x2000 != 0,
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
    })
}

/// The IPv6 header of `pkt` and the chain of extension headers that precede an ESP header
/// (RFC 4303 §3.1.1: hop-by-hop, routing, fragment and destination options).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ipv6Info {
    /// 40 + payload length.
    pub total_len: usize,
    /// Offset of the first octet after the extension header chain.
    pub chain_end: usize,
    /// Offset of the Next Header field that names what follows the chain.
    pub nh_field: usize,
    /// The protocol after the chain.
    pub upper: u8,
    /// A Fragment header with a nonzero offset was seen.
    pub non_first_fragment: bool,
    /// A Fragment header that is not atomic (offset or M flag set) was seen.
    pub fragmented: bool,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

/// Parses an IPv6 header and walks the extension headers (RFC 8200 §4) that may precede
/// ESP; when `through_ah` is set, AH headers are walked as well (for selector extraction).
/// Most extension headers accepted in one packet (RFC 8200 §4.1 orders at most six kinds,
/// destination options twice, plus a fragment header; AH in transport mode).
const MAX_EXTENSION_HEADERS: usize = 10;

#[inline]
pub(crate) fn parse_ipv6(pkt: &[u8], through_ah: bool) -> Option<Ipv6Info> {
    if *pkt.first()? >> 4 != 6 {
        return None;
    }
    let payload_len = usize::from(be16(pkt, 4)?);
    let total_len = IPV6_HDR_LEN + payload_len;
    // Jumbograms (RFC 2675) are not supported: a zero payload length means an empty payload.
    if total_len > pkt.len() {
        return None;
    }
    let src: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
    let dst: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
    let mut nh_field = 6;
    let mut nh = *pkt.get(6)?;
    let mut off = IPV6_HDR_LEN;
    let mut non_first_fragment = false;
    let mut fragmented = false;
    for hops in 0.. {
        // RFC 8200 §4.1: Hop-by-Hop Options only directly after the IPv6 header; and a
        // bounded chain, so a packet of tiny headers cannot make the walk long.
        if hops == MAX_EXTENSION_HEADERS || (nh == IPPROTO_HOPOPTS && off != IPV6_HDR_LEN) {
            return None;
        }
        let len = match nh {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                (usize::from(*pkt.get(off + 1)?) + 1) * 8
            }
            IPPROTO_FRAGMENT => {
                let fo = be16(pkt, off + 2)?;
                if fo & 0xfff8 != 0 {
                    non_first_fragment = true;
                }
                if fo & 0xfff9 != 0 {
                    fragmented = true;
                }
                8
            }
            IPPROTO_AH if through_ah => (usize::from(*pkt.get(off + 1)?) + 2) * 4,
            _ => break,
        };
        if off + len > total_len {
            return None;
        }
        nh_field = off;
        nh = pkt[off];
        off += len;
        if non_first_fragment {
            // Nothing after a non-first fragment's header is a header.
            break;
        }
    }
    Some(Ipv6Info {
        total_len,
        chain_end: off,
        nh_field,
        upper: nh,
        non_first_fragment,
        fragmented,
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
    })
}

/// The selector fields of a packet (RFC 4301 §4.4.1.1), addresses as numbers (IPv4 in the
/// low 32 bits, see [`crate::sad::addr_num`]) so that the per-packet check never builds an
/// `IpAddr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Selectors {
    pub v6: bool,
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// Length of the IP packet according to its header.
    pub total_len: usize,
}

/// Ports (or ICMP type/code, in the high and low octet, RFC 4301 §4.4.1.1) of an upper-layer
/// header; `None` where the packet does not carry them.
#[inline]
pub(crate) fn upper_ports(proto: u8, upper: &[u8]) -> (Option<u16>, Option<u16>) {
    match proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_UDPLITE => {
            (be16(upper, 0), be16(upper, 2))
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let tc = be16(upper, 0);
            (tc, tc)
        }
        _ => (None, None),
    }
}

/// Extracts the selector fields of an IPv4 or IPv6 packet.
/// The selectors of `pkt`, an IPv4 or IPv6 packet. Ports are only read when `ports` is set
/// (else `None`: callers whose selectors all allow any port do not need them).
#[inline(always)]
pub(crate) fn selectors(pkt: &[u8], ports: bool) -> Option<Selectors> {
    match *pkt.first()? >> 4 {
        4 => {
            // The fixed IPv4 header, read once (RFC 791 §3.1).
            let h: &[u8; IPV4_HDR_LEN] = pkt.first_chunk()?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if ihl < IPV4_HDR_LEN || total_len < ihl || total_len > pkt.len() {
                return None;
            }
            let proto = h[9];
            let first_fragment = u16::from_be_bytes([h[6], h[7]]) & 0x1fff == 0;
            let (sp, dp) = if ports && first_fragment {
                upper_ports(proto, pkt.get(ihl..total_len)?)
            } else {
                (None, None)
            };
            Some(Selectors {
                v6: false,
                src: u128::from(u32::from_be_bytes([h[12], h[13], h[14], h[15]])),
                dst: u128::from(u32::from_be_bytes([h[16], h[17], h[18], h[19]])),
                proto,
                src_port: sp,
                dst_port: dp,
                total_len,
            })
        }
        6 => {
            let h = parse_ipv6(pkt, true)?;
            let (sp, dp) = if ports && !h.non_first_fragment {
                upper_ports(h.upper, pkt.get(h.chain_end..h.total_len)?)
            } else {
                (None, None)
            };
            Some(Selectors {
                v6: true,
                src: u128::from(h.src),
                dst: u128::from(h.dst),
                proto: h.upper,
                src_port: sp,
                dst_port: dp,
                total_len: h.total_len,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (checksum 220d).
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold_checksum(sum_words(&d)), !0xddf2);
        // Odd length pads with zero.
        assert_eq!(
            fold_checksum(sum_words(&[0x12, 0x34, 0x56])),
            fold_checksum(sum_words(&[0x12, 0x34, 0x56, 0x00]))
        );
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..80 {
            for fill in [0u8, 0x45, 0x60, 0xff, 0x2c] {
                let mut p = vec![fill; len];
                if let Some(b) = p.first_mut() {
                    *b = if fill == 0x2c { 0x60 } else { fill };
                }
                let _ = selectors(&p, true);
                let _ = selectors(&p, false);
                let _ = parse_ipv6(&p, false);
                let _ = parse_ipv4(&p);
            }
        }
    }

    /// An IPv6/UDP packet behind the given extension headers (each 8 octets).
    fn v6_with(exts: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        p.extend_from_slice(&[0xfd; 32]);
        let mut nh_at = 6;
        for &e in exts {
            p[nh_at] = e;
            nh_at = p.len();
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        }
        p[nh_at] = 17;
        p.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
        let len = (p.len() - IPV6_HDR_LEN) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn extension_header_chain_rules() {
        let ok = parse_ipv6(
            &v6_with(&[IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING]),
            false,
        )
        .unwrap();
        assert_eq!(ok.upper, 17);
        assert_eq!(ok.chain_end, IPV6_HDR_LEN + 24);
        // Hop-by-Hop anywhere but first is refused (RFC 8200 §4.1).
        assert!(parse_ipv6(&v6_with(&[IPPROTO_DSTOPTS, IPPROTO_HOPOPTS]), false).is_none());
        // A long chain of tiny headers is refused.
        assert!(parse_ipv6(&v6_with(&[IPPROTO_DSTOPTS; 9]), false).is_some());
        assert!(parse_ipv6(&v6_with(&[IPPROTO_DSTOPTS; 10]), false).is_none());
    }
}

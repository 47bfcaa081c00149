//! Inbound processing (RFC 4303 §3.4), in place on the caller's buffer.
//!
//! Order of the checks, each cheaper than the next and none trusting unverified data:
//!
//! 1. SPI → SA lookup (§3.4.2); an expired SA drops everything (RFC 4301 §4.4.2.1).
//! 2. The full sequence number: with ESN the high half is inferred from the window
//!    (Appendix A.2) and then authenticated by the ICV.
//! 3. Anti-replay check before any cryptography (§3.4.3).
//! 4. ICV verification and decryption in place (§3.4.4, §3.4.2).
//! 5. Window update, only now that the packet is authentic (§3.4.3).
//! 6. Padding must be 1, 2, 3, … (§2.4); trailer stripped; Next Header 59 is a dummy
//!    packet, dropped and counted (§2.6).
//! 7. Tunnel mode: the inner packet's version must match Next Header (4 or 41), its length
//!    must fit (extra octets are TFC padding, §2.7) and it must match the SA's selectors:
//!    source in the peer's, destination in ours (RFC 4301 §5.2). Transport mode through
//!    [`EspEngine::decapsulate_ip`]: the IP header(s) are moved forward over the ESP header
//!    so the caller gets a valid IP packet, and the same selector check runs on the outer
//!    addresses with the upper-layer protocol and ports.
//!
//! UDP-encapsulated ESP (RFC 3948) is accepted by [`EspEngine::decapsulate_ip`] from a whole
//! outer packet; the UDP checksum is not verified (RFC 3948 §3.1.2 lets receivers skip it,
//! and the ICV covers everything that matters).

use std::net::IpAddr;
use std::ops::Range;
use std::time::Instant;

use ipsec_core::natt::{UdpPayload, classify_udp_4500};
use ipsec_core::replay::ReplayError;
use ipsec_core::sa::Mode;
use ipsec_core::{CryptoError, CryptoProvider, Spi};

use crate::cipher::ESP_HDR_LEN;
use crate::engine::{Decapsulated, EspEngine, raise};
use crate::error::DropReason;
use crate::packet::{
    IPPROTO_ESP, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_NONE, IPPROTO_UDP, IPV6_HDR_LEN, UDP_HDR_LEN,
    be16, ipv4_checksum, parse_ipv4, parse_ipv6, put16, selectors, upper_ports,
};
use crate::sad::{Sa, Selector, addr_num};

/// The outer IP header of a packet given to [`EspEngine::decapsulate_ip`].
#[derive(Debug, Clone, Copy)]
struct Outer {
    v4: bool,
    /// ESP came in UDP (RFC 3948), not as protocol 50.
    udp: bool,
    /// End of the IP header(s): where UDP or ESP starts.
    hdr_len: usize,
    /// Offset of the protocol / next header field naming UDP or ESP.
    nh_field: usize,
    src: IpAddr,
    dst: IpAddr,
}

/// Does any of `ts` match a packet with this address (family `v6`, value from
/// [`addr_num`]), protocol and port?
#[inline]
fn selectors_match(ts: &[Selector], v6: bool, addr: u128, proto: u8, port: Option<u16>) -> bool {
    ts.iter().any(|t| t.matches(v6, addr, proto, port))
}

impl<P: CryptoProvider> EspEngine<P> {
    /// Decapsulates the ESP packet filling `buf` (starting at the SPI, as read from a raw
    /// ESP socket or a UDP-4500 socket after [`classify_udp_4500`]), in place.
    ///
    /// In transport mode the result is the upper-layer payload (no IP header is available
    /// to rebuild, and no selector check can be made); use [`EspEngine::decapsulate_ip`] to
    /// get a rebuilt, selector-checked IP packet.
    pub fn decapsulate(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Decapsulated, DropReason> {
        let end = buf.len();
        self.decap_at(now, buf, 0, end, None)
    }

    /// Decapsulates a whole outer IPv4 or IPv6 packet carrying ESP, directly (protocol 50)
    /// or in UDP (RFC 3948), in place. Fragments must be reassembled first.
    pub fn decapsulate_ip(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Decapsulated, DropReason> {
        let (outer, proto, end) = match buf.first().map(|b| b >> 4) {
            Some(4) => match parse_ipv4(buf) {
                Some(h) if h.frag_offset == 0 && !h.more_fragments => (
                    Outer {
                        v4: true,
                        udp: h.proto == IPPROTO_UDP,
                        hdr_len: h.ihl,
                        nh_field: 9,
                        src: IpAddr::V4(h.src),
                        dst: IpAddr::V4(h.dst),
                    },
                    h.proto,
                    h.total_len,
                ),
                _ => return Err(self.engine_drop(DropReason::BadOuterPacket)),
            },
            Some(6) => match parse_ipv6(buf, false) {
                Some(h) if !h.fragmented => (
                    Outer {
                        v4: false,
                        udp: h.upper == IPPROTO_UDP,
                        hdr_len: h.chain_end,
                        nh_field: h.nh_field,
                        src: IpAddr::V6(h.src),
                        dst: IpAddr::V6(h.dst),
                    },
                    h.upper,
                    h.total_len,
                ),
                _ => return Err(self.engine_drop(DropReason::BadOuterPacket)),
            },
            _ => return Err(self.engine_drop(DropReason::BadOuterPacket)),
        };
        let esp_at = match proto {
            IPPROTO_ESP => outer.hdr_len,
            IPPROTO_UDP => {
                let udp_len = be16(buf, outer.hdr_len + 4).map(usize::from);
                if udp_len != Some(end - outer.hdr_len) || end - outer.hdr_len < UDP_HDR_LEN {
                    return Err(self.engine_drop(DropReason::BadOuterPacket));
                }
                let at = outer.hdr_len + UDP_HDR_LEN;
                match classify_udp_4500(&buf[at..end]) {
                    UdpPayload::Esp(_) => at,
                    _ => return Err(self.engine_drop(DropReason::NotEsp)),
                }
            }
            _ => return Err(self.engine_drop(DropReason::NotEsp)),
        };
        self.decap_at(now, buf, esp_at, end, Some(outer))
    }

    #[cold]
    fn engine_drop(&mut self, r: DropReason) -> DropReason {
        match r {
            DropReason::UnknownSpi(_) => self.stats.unknown_spi += 1,
            DropReason::Truncated => self.stats.truncated += 1,
            DropReason::NotEsp => self.stats.not_esp += 1,
            _ => self.stats.bad_outer_packet += 1,
        }
        tracing::debug!(reason = ?r, "esp: dropped");
        r
    }

    #[inline]
    fn decap_at(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        at: usize,
        end: usize,
        outer: Option<Outer>,
    ) -> Result<Decapsulated, DropReason> {
        let spi = match buf.get(at..at + 4) {
            Some(b) if end >= at + ESP_HDR_LEN => Spi(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            _ => return Err(self.engine_drop(DropReason::Truncated)),
        };
        let events = &mut self.events;
        let Some((id, sa)) = self.sad.lookup_mut(spi) else {
            return Err(self.engine_drop(DropReason::UnknownSpi(spi)));
        };
        let c = sa.lifetime.check(now, sa.stats.packets, sa.stats.bytes);
        raise(events, id, spi, c);
        let result = if sa.lifetime.expired().is_some() {
            Err(DropReason::SaExpired)
        } else if outer.as_ref().is_some_and(|o| o.udp != sa.encap.is_some()) {
            Err(DropReason::EncapMismatch)
        } else {
            decap_sa(sa, buf, at, end, outer)
        };
        match result {
            Ok((seq, next_header, range, bytes)) => {
                sa.stats.packets += 1;
                sa.stats.bytes += bytes as u64;
                let c = sa.lifetime.check(now, sa.stats.packets, sa.stats.bytes);
                raise(events, id, spi, c);
                Ok(Decapsulated {
                    sa: id,
                    spi,
                    seq,
                    next_header,
                    range,
                })
            }
            Err(r) => {
                sa.stats.drops.bump(r);
                trace_drop(spi, r);
                Err(r)
            }
        }
    }
}

#[cold]
fn trace_drop(spi: Spi, r: DropReason) {
    tracing::debug!(%spi, reason = ?r, "esp: dropped");
}

/// Steps 2–7 for one SA: (seq, next header, result range, octets delivered).
#[inline]
fn decap_sa<P: CryptoProvider>(
    sa: &mut Sa<P>,
    buf: &mut [u8],
    at: usize,
    end: usize,
    outer: Option<Outer>,
) -> Result<(u64, u8, Range<usize>, usize), DropReason> {
    let iv_len = sa.layout.iv_len;
    let icv_len = sa.layout.icv_len;
    let esp = buf.get_mut(at..end).ok_or(DropReason::Truncated)?;
    if esp.len() < sa.layout.min_esp_len {
        return Err(DropReason::Truncated);
    }
    let lo = u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]]);
    let seq = sa.replay.infer_seq(lo);
    sa.replay.check(seq).map_err(|e| match e {
        ReplayError::Replayed => DropReason::Replayed { seq },
        ReplayError::TooOld => DropReason::TooOld { seq },
        ReplayError::Zero => DropReason::ZeroSequence,
    })?;
    sa.cipher.open(esp, seq, sa.esn).map_err(|e| match e {
        CryptoError::InvalidLength => DropReason::Truncated,
        _ => DropReason::IntegrityFailed,
    })?;
    sa.replay.update(seq);
    sa.stats.last_seq = sa.replay.top();

    // Trailer (RFC 4303 §2.4–2.6).
    let ct = &esp[ESP_HDR_LEN + iv_len..esp.len() - icv_len];
    let (next_header, pad) = match ct {
        [.., p, nh] => (*nh, usize::from(*p)),
        _ => return Err(DropReason::Truncated),
    };
    let data_len = ct
        .len()
        .checked_sub(pad + 2)
        .ok_or(DropReason::BadPadding)?;
    if !ct[data_len..data_len + pad]
        .iter()
        .enumerate()
        .all(|(i, &b)| usize::from(b) == i + 1)
    {
        return Err(DropReason::BadPadding);
    }
    if next_header == IPPROTO_NONE {
        return Err(DropReason::Dummy);
    }
    let data = at + ESP_HDR_LEN + iv_len..at + ESP_HDR_LEN + iv_len + data_len;

    match sa.mode {
        Mode::Tunnel => {
            let inner = &buf[data.clone()];
            let version = match next_header {
                IPPROTO_IPIP => 4,
                IPPROTO_IPV6 => 6,
                _ => return Err(DropReason::BadInnerPacket),
            };
            if inner.first().map(|b| b >> 4) != Some(version) {
                return Err(DropReason::BadInnerPacket);
            }
            let s = selectors(inner, sa.ts_ports).ok_or(DropReason::BadInnerPacket)?;
            if !selectors_match(&sa.ts_remote, s.v6, s.src, s.proto, s.src_port)
                || !selectors_match(&sa.ts_local, s.v6, s.dst, s.proto, s.dst_port)
            {
                return Err(DropReason::TsMismatch);
            }
            // Octets after the inner packet are TFC padding (RFC 4303 §2.7).
            let range = data.start..data.start + s.total_len;
            Ok((seq, next_header, range, s.total_len))
        }
        Mode::Transport => {
            let Some(o) = outer else {
                let n = data.len();
                return Ok((seq, next_header, data, n));
            };
            let (sp, dp) = upper_ports(next_header, &buf[data.clone()]);
            let v6 = !o.v4;
            if !selectors_match(&sa.ts_remote, v6, addr_num(o.src), next_header, sp)
                || !selectors_match(&sa.ts_local, v6, addr_num(o.dst), next_header, dp)
            {
                return Err(DropReason::TsMismatch);
            }
            // Move the IP header(s) forward over UDP/ESP header and IV.
            let start = data.start - o.hdr_len;
            buf.copy_within(0..o.hdr_len, start);
            let total = o.hdr_len + data.len();
            let hdr = &mut buf[start..data.start];
            hdr[o.nh_field] = next_header;
            if o.v4 {
                put16(hdr, 2, total as u16);
                put16(hdr, 10, 0);
                let c = ipv4_checksum(hdr);
                put16(hdr, 10, c);
            } else {
                put16(hdr, 4, (total - IPV6_HDR_LEN) as u16);
            }
            Ok((seq, next_header, start..data.end, data.len()))
        }
    }
}

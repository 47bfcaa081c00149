//! Outbound processing (RFC 4303 §3.3), in place on the caller's buffer.
//!
//! Tunnel mode (RFC 4303 §3.1.2): the caller puts the inner IP packet at an offset of at
//! least [`EspEngine::headroom`] with [`EspEngine::tailroom`] octets free after it; the
//! engine writes the ESP header (and, for [`Output::Ip`], the outer IP and UDP headers)
//! into the headroom, and padding, trailer and ICV into the tailroom.
//!
//! Transport mode (RFC 4303 §3.1.1): the caller gives the whole IP packet; the engine moves
//! the IPv4 header, or the IPv6 header with its hop-by-hop / routing / fragment /
//! destination options chain, back into the headroom and inserts ESP (and the UDP header of
//! RFC 3948 §2.1 for [`Output::Ip`]) between it and the upper-layer payload, fixing the
//! protocol / next header field, the lengths and the IPv4 header checksum.
//!
//! Padding is 1, 2, 3, … (RFC 4303 §2.4) up to a 4-octet boundary for AEADs or the
//! 16-octet block for AES-CBC. Sequence numbers start at 1 and never wrap (RFC 4303
//! §3.3.3). The UDP checksum is computed for IPv6 (RFC 8200 §8.1) and zero for IPv4
//! (RFC 3948 §2.1).

use std::net::IpAddr;
use std::ops::Range;
use std::time::Instant;

use ipsec_core::sa::{Direction, Mode};
use ipsec_core::{CryptoProvider, Spi};

use crate::engine::{EspEngine, Output, raise};
use crate::error::EncapError;
use crate::event::EspEvent;
use crate::packet::{
    IPPROTO_ESP, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, IPV4_HDR_LEN, IPV6_HDR_LEN, UDP_HDR_LEN,
    parse_ipv4, parse_ipv6, put16, udp_checksum, write_ipv4_header, write_ipv6_header,
};
use crate::sad::{Sa, SaId};

/// Padding octets for `len` octets of payload so that payload ‖ padding ‖ pad length ‖
/// next header is a multiple of `align_mask + 1` (a power of two).
#[inline]
fn pad_len(len: usize, align_mask: usize) -> usize {
    (len + 2).wrapping_neg() & align_mask
}

impl<P: CryptoProvider> Sa<P> {
    fn tail(&self, len: usize) -> usize {
        let l = &self.layout;
        let pad = match self.mode {
            Mode::Tunnel => pad_len(len, l.align_mask),
            // The upper-layer length is not known before parsing: the worst case.
            Mode::Transport => l.align_mask,
        };
        pad + 2 + l.icv_len
    }

    /// Takes the next sequence number (RFC 4303 §3.3.3), raising the warning and exhaustion
    /// events.
    #[inline(always)]
    fn next_seq(
        &mut self,
        id: SaId,
        events: &mut std::collections::VecDeque<EspEvent>,
    ) -> Option<u64> {
        // Far from the warning margin (and so from the end): nothing to raise.
        if self.last_seq < self.layout.warn_seq - 1 {
            self.last_seq += 1;
            return Some(self.last_seq);
        }
        self.next_seq_near_end(id, events)
    }

    #[cold]
    #[inline(never)]
    fn next_seq_near_end(
        &mut self,
        id: SaId,
        events: &mut std::collections::VecDeque<EspEvent>,
    ) -> Option<u64> {
        let max = self.layout.max_seq;
        if self.last_seq >= max {
            if !self.seq_exhausted {
                self.seq_exhausted = true;
                tracing::debug!(spi = %self.spi, "esp: sequence numbers exhausted");
                events.push_back(EspEvent::SeqExhausted {
                    sa: id,
                    spi: self.spi,
                });
            }
            return None;
        }
        self.last_seq += 1;
        if !self.seq_warned && self.last_seq >= self.layout.warn_seq {
            self.seq_warned = true;
            events.push_back(EspEvent::SeqNearExhaustion {
                sa: id,
                spi: self.spi,
            });
        }
        if self.last_seq == max && !self.seq_exhausted {
            self.seq_exhausted = true;
            events.push_back(EspEvent::SeqExhausted {
                sa: id,
                spi: self.spi,
            });
        }
        Some(self.last_seq)
    }
}

/// Writes trailer, ESP header and seals `buf[esp_start..esp_end]`.
#[inline(always)]
fn seal_esp<P: CryptoProvider>(
    sa: &Sa<P>,
    buf: &mut [u8],
    esp_start: usize,
    payload_end: usize,
    pad: usize,
    next_header: u8,
    seq: u64,
) -> Result<usize, EncapError> {
    let tr = &mut buf[payload_end..payload_end + pad + 2];
    for (i, b) in tr[..pad].iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    tr[pad] = pad as u8;
    tr[pad + 1] = next_header;
    let esp_end = payload_end + pad + 2 + sa.layout.icv_len;
    buf[esp_start..esp_start + 4].copy_from_slice(&sa.spi.to_bytes());
    buf[esp_start + 4..esp_start + 8].copy_from_slice(&(seq as u32).to_be_bytes());
    sa.cipher
        .seal(&mut buf[esp_start..esp_end], seq, sa.esn, None)
        .map_err(EncapError::Crypto)?;
    Ok(esp_end)
}

/// Writes a UDP header at `at` covering `at..end` (RFC 3948 §2.1).
fn write_udp(
    buf: &mut [u8],
    at: usize,
    end: usize,
    ports: (u16, u16),
    addrs: Option<(IpAddr, IpAddr)>,
) -> Result<(), EncapError> {
    let len = u16::try_from(end - at).map_err(|_| EncapError::PacketTooBig)?;
    let h = &mut buf[at..at + UDP_HDR_LEN];
    put16(h, 0, ports.0);
    put16(h, 2, ports.1);
    put16(h, 4, len);
    put16(h, 6, 0);
    if let Some((src, dst)) = addrs {
        let c = udp_checksum(&src, &dst, &buf[at..end]);
        put16(buf, at + 6, c);
    }
    Ok(())
}

impl<P: CryptoProvider> EspEngine<P> {
    /// Octets the engine writes before the payload of `sa` (see [`Output`]); place the
    /// inner packet at this offset or later. `None` for an unknown SA.
    pub fn headroom(&self, sa: SaId) -> Option<usize> {
        Some(self.sad.get(sa)?.layout.head)
    }

    /// Octets the engine writes after a payload of `len` octets: padding, pad length, next
    /// header and ICV. Exact in tunnel mode (`len` = inner packet); in transport mode (`len`
    /// = whole IP packet) an upper bound, since padding depends on the header length.
    pub fn tailroom(&self, sa: SaId, len: usize) -> Option<usize> {
        Some(self.sad.get(sa)?.tail(len))
    }

    /// Octets added to a payload of `len` octets: [`EspEngine::headroom`] +
    /// [`EspEngine::tailroom`].
    pub fn overhead(&self, sa: SaId, len: usize) -> Option<usize> {
        let s = self.sad.get(sa)?;
        Some(s.layout.head + s.tail(len))
    }

    /// Encapsulates the packet at `buf[payload]` with outbound SA `sa`, in place, and
    /// returns the range of `buf` to send (see [`Output`] for where it starts).
    ///
    /// Tunnel mode: `buf[payload]` is the inner IPv4 or IPv6 packet. Transport mode: it is
    /// a whole, unfragmented IP packet. Needs `payload.start ≥ headroom(sa)` and
    /// `tailroom(sa, len)` octets after `payload.end`. The caller's SPD chose `sa`; outbound
    /// selectors are not re-checked here.
    pub fn encapsulate(
        &mut self,
        now: Instant,
        sa: SaId,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> Result<Range<usize>, EncapError> {
        let output = self.config.output;
        let hop_limit = self.config.hop_limit;
        let events = &mut self.events;
        let Some(s) = self.sad.get_mut(sa) else {
            return Err(EncapError::UnknownSa);
        };
        if s.direction != Direction::Outbound {
            return Err(EncapError::NotOutbound);
        }
        let c = s.lifetime.check(now, s.stats.packets, s.stats.bytes);
        raise(events, sa, s.spi, c);
        let result = if s.lifetime.expired().is_some() {
            Err(EncapError::HardLifetimeExpired)
        } else {
            match s.mode {
                Mode::Tunnel => encap_tunnel(s, sa, events, buf, payload, output, hop_limit),
                Mode::Transport => encap_transport(s, sa, events, buf, payload, output),
            }
        };
        match result {
            Ok((range, bytes)) => {
                s.stats.packets += 1;
                s.stats.bytes += bytes as u64;
                s.stats.last_seq = s.last_seq;
                let c = s.lifetime.check(now, s.stats.packets, s.stats.bytes);
                raise(events, sa, s.spi, c);
                Ok(range)
            }
            Err(e) => {
                s.stats.encap_errors += 1;
                trace_refusal(s.spi, e);
                Err(e)
            }
        }
    }
}

#[cold]
fn trace_refusal(spi: Spi, e: EncapError) {
    tracing::debug!(%spi, error = ?e, "esp: encapsulation refused");
}

fn check_range(buf: &[u8], payload: &Range<usize>) -> Result<(), EncapError> {
    if payload.start > payload.end || payload.end > buf.len() {
        return Err(EncapError::BadRange);
    }
    Ok(())
}

/// Tunnel mode; returns the range to send and the inner octets.
#[inline]
fn encap_tunnel<P: CryptoProvider>(
    sa: &mut Sa<P>,
    id: SaId,
    events: &mut std::collections::VecDeque<EspEvent>,
    buf: &mut [u8],
    payload: Range<usize>,
    output: Output,
    hop_limit: u8,
) -> Result<(Range<usize>, usize), EncapError> {
    check_range(buf, &payload)?;
    let len = payload.len();
    let inner = &buf[payload.clone()];
    let (next_header, tos) = match (inner.first().map(|b| b >> 4), inner.get(1)) {
        (Some(4), Some(&tos)) => (IPPROTO_IPIP, tos),
        (Some(6), Some(&b1)) => (IPPROTO_IPV6, (inner[0] << 4) | (b1 >> 4)),
        _ => return Err(EncapError::BadInnerPacket),
    };
    let sizes = sa.layout;
    let pad = pad_len(len, sizes.align_mask);
    let tail = pad + 2 + sizes.icv_len;
    if payload.start < sizes.head || buf.len() - payload.end < tail {
        return Err(EncapError::BufferTooSmall {
            needed: sizes.head + len + tail,
        });
    }
    let total = sizes.head + len + tail;
    let length_field = if sizes.outer_ip == IPV6_HDR_LEN {
        total - IPV6_HDR_LEN
    } else {
        total
    };
    if output == Output::Ip && length_field > usize::from(u16::MAX) {
        return Err(EncapError::PacketTooBig);
    }
    let seq = sa.next_seq(id, events).ok_or(EncapError::SeqExhausted)?;
    let start = payload.start - sizes.head;
    let esp_start = start + sizes.outer_ip + sizes.udp;
    let esp_end = seal_esp(sa, buf, esp_start, payload.end, pad, next_header, seq)?;
    if output == Output::Ip {
        let (outer_proto, udp_at) = if let Some(e) = sa.encap {
            (IPPROTO_UDP, Some((e.local_port, e.remote_port)))
        } else {
            (IPPROTO_ESP, None)
        };
        let checksum_addrs = if sa.remote_addr.is_ipv6() {
            Some((sa.local_addr, sa.remote_addr))
        } else {
            None
        };
        if let Some(ports) = udp_at {
            write_udp(buf, esp_start - UDP_HDR_LEN, esp_end, ports, checksum_addrs)?;
        }
        match (sa.local_addr, sa.remote_addr) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                sa.ipv4_id = sa.ipv4_id.wrapping_add(1);
                write_ipv4_header(
                    &mut buf[start..start + IPV4_HDR_LEN],
                    tos,
                    length_field as u16,
                    sa.ipv4_id,
                    hop_limit,
                    outer_proto,
                    src,
                    dst,
                );
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => write_ipv6_header(
                &mut buf[start..start + IPV6_HDR_LEN],
                tos,
                length_field as u16,
                outer_proto,
                hop_limit,
                src,
                dst,
            ),
            // Rejected by install.
            _ => return Err(EncapError::BadInnerPacket),
        }
        Ok((start..esp_end, len))
    } else {
        Ok((esp_start..esp_end, len))
    }
}

/// Transport mode; returns the range to send and the upper-layer octets.
#[inline]
fn encap_transport<P: CryptoProvider>(
    sa: &mut Sa<P>,
    id: SaId,
    events: &mut std::collections::VecDeque<EspEvent>,
    buf: &mut [u8],
    payload: Range<usize>,
    output: Output,
) -> Result<(Range<usize>, usize), EncapError> {
    check_range(buf, &payload)?;
    let len = payload.len();
    let pkt = &buf[payload.clone()];
    // (header length, upper protocol, offset of the field naming it, v4?, addresses)
    let (hdr_len, upper, nh_field, v4, addrs) = match pkt.first().map(|b| b >> 4) {
        Some(4) => {
            let h = parse_ipv4(pkt).ok_or(EncapError::BadInnerPacket)?;
            if h.total_len != len || h.more_fragments || h.frag_offset != 0 {
                return Err(EncapError::BadInnerPacket);
            }
            (
                h.ihl,
                h.proto,
                9,
                true,
                (IpAddr::V4(h.src), IpAddr::V4(h.dst)),
            )
        }
        Some(6) => {
            let h = parse_ipv6(pkt, false).ok_or(EncapError::BadInnerPacket)?;
            if h.total_len != len || h.fragmented {
                return Err(EncapError::BadInnerPacket);
            }
            (
                h.chain_end,
                h.upper,
                h.nh_field,
                false,
                (IpAddr::V6(h.src), IpAddr::V6(h.dst)),
            )
        }
        _ => return Err(EncapError::BadInnerPacket),
    };
    let upper_len = len - hdr_len;
    let sizes = sa.layout;
    let ins = sizes.head;
    let pad = pad_len(upper_len, sizes.align_mask);
    let tail = pad + 2 + sizes.icv_len;
    if payload.start < ins || buf.len() - payload.end < tail {
        return Err(EncapError::BufferTooSmall {
            needed: ins + len + sa.tail(len),
        });
    }
    let new_total = len + ins + tail;
    let length_field = if v4 {
        new_total
    } else {
        new_total - IPV6_HDR_LEN
    };
    let length_field = u16::try_from(length_field).map_err(|_| EncapError::PacketTooBig)?;
    let seq = sa.next_seq(id, events).ok_or(EncapError::SeqExhausted)?;
    let start = payload.start - ins;
    buf.copy_within(payload.start..payload.start + hdr_len, start);
    let esp_start = start + hdr_len + sizes.udp;
    let esp_end = seal_esp(sa, buf, esp_start, payload.end, pad, upper, seq)?;
    let proto = if sizes.udp != 0 {
        IPPROTO_UDP
    } else {
        IPPROTO_ESP
    };
    if let (Some(e), true) = (sa.encap, sizes.udp != 0) {
        let sum = (!v4).then_some(addrs);
        write_udp(
            buf,
            esp_start - UDP_HDR_LEN,
            esp_end,
            (e.local_port, e.remote_port),
            sum,
        )?;
    }
    let hdr = &mut buf[start..start + hdr_len];
    hdr[nh_field] = proto;
    if v4 {
        put16(hdr, 2, length_field);
        put16(hdr, 10, 0);
        let c = crate::packet::ipv4_checksum(hdr);
        put16(hdr, 10, c);
    } else {
        put16(hdr, 4, length_field);
    }
    let range = match output {
        Output::Ip => start..esp_end,
        Output::Esp => esp_start..esp_end,
    };
    Ok((range, upper_len))
}

//! Receive-side coalescing of decrypted packets into TUN writes: the inverse of the
//! super-segment split on the way out, so that the kernel's TCP and UDP stacks get one
//! large packet (a virtio-net GSO frame) instead of tens of segments, one `write` each.
//!
//! The rules are those of the kernel's own GRO (`net/ipv4/tcp_offload.c`,
//! `net/ipv4/udp_offload.c`), applied within one batch of packets:
//!
//! - TCP (IPv4 without options or fragmentation, IPv6 without extension headers): same
//!   addresses and ports; the IP headers agree (IPv4 TOS, TTL, DF; IPv6 traffic class, flow
//!   label, hop limit); the TCP header is the same length with the same options; the flags
//!   are ACK, with PSH allowed on the last segment only; the sequence number continues the
//!   run; every segment but the last has the size of the first, the last may be shorter.
//! - UDP (only when the device accepts UDP segmentation offload): same addresses and
//!   ports, IP headers as above, every datagram but the last of the first one's size.
//! - Each segment's transport checksum is verified before it joins a run: the kernel takes
//!   a coalesced frame's checksum as good (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), so a corrupted
//!   segment must not be hidden in one. A packet that cannot join anything is written
//!   unchanged, with an empty virtio-net header, and the kernel checks it as usual.
//! - A run never exceeds 64 KiB of IP packet and is written before any later run of the
//!   same flow, so no flow is reordered.
//!
//! Each packet is copied once, from the receive buffer into its run; nothing is allocated
//! per packet (the buffers are made once, with room for a whole run).

use std::ops::Range;

use tun_rs::VIRTIO_NET_HDR_LEN;

use crate::datapath::{F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};

const TCP: u8 = 6;
const UDP: u8 = 17;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

/// Largest IP packet a run grows to.
const MAX_RUN: usize = 65535;
/// Runs searched (newest first) for one that a packet continues.
const SEARCH: usize = 8;

/// What identifies a flow, and what must match for two packets to share a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    v6: bool,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    ports: [u8; 4],
    /// IPv4: TOS, TTL and the DF bit; IPv6: version/traffic class/flow label and hop limit.
    ip_fields: [u8; 5],
}

impl FlowKey {
    /// Same addresses, protocol and ports (whatever the other IP header fields).
    fn same_flow(&self, o: &FlowKey) -> bool {
        (self.v6, self.proto, self.src, self.dst, self.ports)
            == (o.v6, o.proto, o.src, o.dst, o.ports)
    }
}

/// The flow of any IPv4 or IPv6 packet with a TCP or UDP header right after the IP header.
fn flow_of(p: &[u8]) -> Option<FlowKey> {
    let (v6, ip_len, proto) = match p.first()? >> 4 {
        4 if p.len() >= 20 => (false, usize::from(p[0] & 0x0f) * 4, p[9]),
        6 if p.len() >= 40 => (true, 40, p[6]),
        _ => return None,
    };
    if !matches!(proto, TCP | UDP) || p.len() < ip_len + 4 {
        return None;
    }
    let mut src = [0; 16];
    let mut dst = [0; 16];
    if v6 {
        src.copy_from_slice(&p[8..24]);
        dst.copy_from_slice(&p[24..40]);
    } else {
        src[..4].copy_from_slice(&p[12..16]);
        dst[..4].copy_from_slice(&p[16..20]);
    }
    let mut ports = [0; 4];
    ports.copy_from_slice(&p[ip_len..ip_len + 4]);
    Some(FlowKey {
        v6,
        proto,
        src,
        dst,
        ports,
        ip_fields: [0; 5],
    })
}

/// A run of packets of one flow in one buffer.
#[derive(Debug, Clone, Copy)]
struct Run {
    key: Option<FlowKey>,
    /// IP header length (the transport header starts here).
    ip_len: usize,
    /// Transport header length.
    l4_len: usize,
    /// Payload size of the first segment: the segment size of the frame.
    gso_size: usize,
    /// TCP: the sequence number the next segment must carry.
    next_seq: u32,
    segments: usize,
    /// No more segments may join (a short one or a PSH joined).
    closed: bool,
}

/// Parsed facts about one packet.
struct Candidate {
    key: FlowKey,
    ip_len: usize,
    l4_len: usize,
    payload: usize,
    seq: u32,
    psh: bool,
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroStats {
    /// Packets pushed.
    pub packets: u64,
    /// Frames handed to the writer.
    pub frames: u64,
    /// Candidates refused because their transport checksum was wrong (written alone).
    pub bad_checksum: u64,
}

/// The batch being built: buffers of `VIRTIO_NET_HDR_LEN + 64 KiB`, each one frame.
#[derive(Debug)]
pub struct Coalescer {
    bufs: Vec<Vec<u8>>,
    runs: Vec<Run>,
    n: usize,
    /// The device takes virtio-net headers (else: no header, no coalescing).
    vnet: bool,
    udp: bool,
    /// Counters since creation.
    pub stats: GroStats,
}

impl Coalescer {
    /// Up to `frames` frames per batch. `vnet`: the device takes virtio-net headers (TUN
    /// offload; without it every packet is written alone and without a header); `udp`: it
    /// also takes UDP GSO frames.
    pub fn new(frames: usize, vnet: bool, udp: bool) -> Self {
        Self {
            bufs: (0..frames.max(1))
                .map(|_| Vec::with_capacity(VIRTIO_NET_HDR_LEN + MAX_RUN))
                .collect(),
            runs: Vec::with_capacity(frames.max(1)),
            n: 0,
            vnet,
            udp: udp && vnet,
            stats: GroStats::default(),
        }
    }

    /// True when the next packet may need a buffer that is not there: flush first.
    pub fn is_full(&self) -> bool {
        self.n == self.bufs.len()
    }

    /// True if nothing is batched.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Adds one IP packet (copied). Returns false, taking nothing, when the batch is full
    /// ([`Coalescer::is_full`]): flush and push again.
    #[must_use]
    pub fn push(&mut self, pkt: &[u8]) -> bool {
        if self.is_full() {
            return false;
        }
        self.stats.packets += 1;
        let cand = match self.candidate(pkt).filter(|_| self.vnet) {
            Some(c) if checksum_ok(pkt, &c) => Some(c),
            Some(_) => {
                self.stats.bad_checksum += 1;
                None
            }
            None => None,
        };
        if let Some(c) = &cand
            && let Some(i) = self.find(pkt, c)
        {
            self.append(i, pkt, c);
            return true;
        }
        if cand.is_none() {
            // A packet of a flow that cannot join (a pure ACK, FIN, a bad checksum, …)
            // ends that flow's runs: nothing after it may be written before it.
            if let Some(f) = flow_of(pkt) {
                let lo = self.n.saturating_sub(SEARCH);
                for r in &mut self.runs[lo..self.n] {
                    if r.key.is_some_and(|k| k.same_flow(&f)) {
                        r.closed = true;
                    }
                }
            }
        }
        let i = self.n;
        self.n += 1;
        let b = &mut self.bufs[i];
        b.clear();
        b.resize(VIRTIO_NET_HDR_LEN, 0);
        b.extend_from_slice(pkt);
        let run = match cand {
            Some(c) => Run {
                key: Some(c.key),
                ip_len: c.ip_len,
                l4_len: c.l4_len,
                gso_size: c.payload,
                next_seq: c.seq.wrapping_add(c.payload as u32),
                segments: 1,
                closed: c.psh,
            },
            None => Run {
                key: None,
                ip_len: 0,
                l4_len: 0,
                gso_size: 0,
                next_seq: 0,
                segments: 1,
                closed: true,
            },
        };
        if self.runs.len() < self.n {
            self.runs.push(run);
        } else {
            self.runs[i] = run;
        }
        true
    }

    /// Finishes the frames and hands each (virtio-net header + packet) to `write`, in
    /// order; the batch is empty afterwards.
    pub fn flush(&mut self, mut write: impl FnMut(&[u8])) {
        for i in 0..self.n {
            let run = self.runs[i];
            let b = &mut self.bufs[i];
            if self.vnet {
                finish(b, &run);
                write(b);
            } else {
                write(&b[VIRTIO_NET_HDR_LEN..]);
            }
        }
        self.stats.frames += self.n as u64;
        self.n = 0;
    }

    /// The coalescing facts of `pkt`, if it is a TCP or (with `udp`) UDP packet that could
    /// join a run.
    fn candidate(&self, p: &[u8]) -> Option<Candidate> {
        let v = p.first()? >> 4;
        let (v6, ip_len, proto, src, dst, ip_fields) = match v {
            4 => {
                if p.len() < 20 || p[0] & 0x0f != 5 || usize::from(be16(p, 2)) != p.len() {
                    return None;
                }
                // No fragments (MF or an offset); DF is part of the key.
                if be16(p, 6) & 0x3fff != 0 {
                    return None;
                }
                let mut src = [0; 16];
                let mut dst = [0; 16];
                src[..4].copy_from_slice(&p[12..16]);
                dst[..4].copy_from_slice(&p[16..20]);
                (false, 20, p[9], src, dst, [p[1], p[8], p[6] & 0x40, 0, 0])
            }
            6 => {
                if p.len() < 40 || usize::from(be16(p, 4)) + 40 != p.len() {
                    return None;
                }
                let mut src = [0; 16];
                let mut dst = [0; 16];
                src.copy_from_slice(&p[8..24]);
                dst.copy_from_slice(&p[24..40]);
                (true, 40, p[6], src, dst, [p[0], p[1], p[2], p[3], p[7]])
            }
            _ => return None,
        };
        let l4 = &p[ip_len..];
        let mut ports = [0; 4];
        let (l4_len, seq, psh) = match proto {
            TCP => {
                if l4.len() < 20 {
                    return None;
                }
                let th = usize::from(l4[12] >> 4) * 4;
                let flags = l4[13];
                if th < 20 || l4.len() < th || (flags != TCP_ACK && flags != TCP_ACK | TCP_PSH) {
                    return None;
                }
                (th, be32(l4, 4), flags & TCP_PSH != 0)
            }
            UDP if self.udp => {
                if l4.len() < 8 || usize::from(be16(l4, 4)) != l4.len() || be16(l4, 6) == 0 {
                    // A zero UDP checksum (IPv4 only) cannot become a partial one.
                    return None;
                }
                (8, 0, false)
            }
            _ => return None,
        };
        ports.copy_from_slice(&l4[..4]);
        let payload = l4.len() - l4_len;
        if payload == 0 {
            return None;
        }
        Some(Candidate {
            key: FlowKey {
                v6,
                proto,
                src,
                dst,
                ports,
                ip_fields,
            },
            ip_len,
            l4_len,
            payload,
            seq,
            psh,
        })
    }

    /// The newest open run that `pkt` continues.
    fn find(&self, pkt: &[u8], c: &Candidate) -> Option<usize> {
        let lo = self.n.saturating_sub(SEARCH);
        for i in (lo..self.n).rev() {
            let r = &self.runs[i];
            if r.key != Some(c.key) {
                continue;
            }
            // The newest run of the flow decides: joining an older one would reorder.
            let fits = !r.closed
                && c.l4_len == r.l4_len
                && c.payload <= r.gso_size
                && self.bufs[i].len() - VIRTIO_NET_HDR_LEN + c.payload <= MAX_RUN
                && (c.key.proto != TCP
                    || (c.seq == r.next_seq && {
                        // The same acknowledgment number and options (bytes 8..12 and 20..).
                        let head = &self.bufs[i][VIRTIO_NET_HDR_LEN + r.ip_len..];
                        let th = &pkt[c.ip_len..];
                        th[8..12] == head[8..12] && th[20..c.l4_len] == head[20..r.l4_len]
                    }));
            return fits.then_some(i);
        }
        None
    }

    fn append(&mut self, i: usize, pkt: &[u8], c: &Candidate) {
        let run = &mut self.runs[i];
        let b = &mut self.bufs[i];
        b.extend_from_slice(&pkt[c.ip_len + c.l4_len..]);
        run.segments += 1;
        run.next_seq = c.seq.wrapping_add(c.payload as u32);
        if c.payload < run.gso_size {
            run.closed = true;
        }
        if c.psh {
            run.closed = true;
            b[VIRTIO_NET_HDR_LEN + run.ip_len + 13] |= TCP_PSH;
        }
    }
}

/// Writes the virtio-net header of one frame and, for a coalesced one, its IP length and
/// partial transport checksum.
fn finish(b: &mut [u8], run: &Run) {
    let (hdr, pkt) = b.split_at_mut(VIRTIO_NET_HDR_LEN);
    hdr.fill(0);
    let Some(key) = run.key.filter(|_| run.segments > 1) else {
        return;
    };
    let total = pkt.len();
    let l4_total = total - run.ip_len;
    if key.v6 {
        pkt[4..6].copy_from_slice(&(l4_total as u16).to_be_bytes());
    } else {
        pkt[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        pkt[10..12].fill(0);
        let c = !tun_rs::checksum(&pkt[..20], 0);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let csum_offset: u16 = if key.proto == TCP { 16 } else { 6 };
    if key.proto == UDP {
        pkt[run.ip_len + 4..run.ip_len + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
    }
    // The pseudo-header sum, not complemented: the kernel adds the rest.
    let at = run.ip_len + usize::from(csum_offset);
    let pseudo = tun_rs::checksum(&[], pseudo_sum(pkt, key.v6, key.proto, l4_total));
    pkt[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
    hdr[0] = F_NEEDS_CSUM;
    hdr[1] = match (key.proto, key.v6) {
        (TCP, false) => GSO_TCPV4,
        (TCP, true) => GSO_TCPV6,
        _ => GSO_UDP_L4,
    };
    let le = |v: usize| (v as u16).to_le_bytes();
    hdr[2..4].copy_from_slice(&le(run.ip_len + run.l4_len));
    hdr[4..6].copy_from_slice(&le(run.gso_size));
    hdr[6..8].copy_from_slice(&le(run.ip_len));
    hdr[8..10].copy_from_slice(&csum_offset.to_le_bytes());
}

/// Is the transport checksum of `p` right?
fn checksum_ok(p: &[u8], c: &Candidate) -> bool {
    let l4: Range<usize> = c.ip_len..p.len();
    let sum = tun_rs::checksum(
        &p[l4.clone()],
        pseudo_sum(p, c.key.v6, c.key.proto, l4.len()),
    );
    sum == 0xffff
}

/// Ones'-complement sum (unfolded) of the pseudo-header (RFC 793 / RFC 8200 §8.1).
fn pseudo_sum(p: &[u8], v6: bool, proto: u8, l4_len: usize) -> u64 {
    let addrs = if v6 { &p[8..40] } else { &p[12..20] };
    let mut s: u64 = addrs
        .chunks_exact(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    s += u64::from(proto);
    s += l4_len as u64;
    s
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tun_rs::{VirtioNetHdr, gso_split};

    /// An IPv6 (or IPv4) TCP segment with a correct checksum.
    fn tcp(v6: bool, seq: u32, ack: u32, flags: u8, payload: &[u8], id: u16) -> Vec<u8> {
        let mut th = vec![0u8; 32];
        th[0..2].copy_from_slice(&5201u16.to_be_bytes());
        th[2..4].copy_from_slice(&40000u16.to_be_bytes());
        th[4..8].copy_from_slice(&seq.to_be_bytes());
        th[8..12].copy_from_slice(&ack.to_be_bytes());
        th[12] = 8 << 4; // 32-octet header: NOP NOP timestamps
        th[13] = flags;
        th[14..16].copy_from_slice(&512u16.to_be_bytes());
        th[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
        th.extend_from_slice(payload);
        finish_l4(ip(v6, TCP, th, id), v6, 16)
    }

    fn udp(v6: bool, payload: &[u8], id: u16) -> Vec<u8> {
        let mut uh = vec![0u8; 8];
        uh[0..2].copy_from_slice(&4500u16.to_be_bytes());
        uh[2..4].copy_from_slice(&5001u16.to_be_bytes());
        uh[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        uh.extend_from_slice(payload);
        finish_l4(ip(v6, UDP, uh, id), v6, 6)
    }

    fn ip(v6: bool, proto: u8, l4: Vec<u8>, id: u16) -> Vec<u8> {
        let mut p = if v6 {
            let mut h = vec![0x60, 0x0a, 0xbc, 0xde, 0, 0, proto, 64];
            h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
            h.extend_from_slice(&"fd02::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
            h.extend_from_slice(&"fd01::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
            h
        } else {
            let mut h = vec![
                0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 2, 1, 10, 0, 1, 1,
            ];
            h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&id.to_be_bytes());
            let c = !tun_rs::checksum(&h, 0);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h
        };
        p.extend_from_slice(&l4);
        p
    }

    fn finish_l4(mut p: Vec<u8>, v6: bool, csum_at: usize) -> Vec<u8> {
        let ip_len = if v6 { 40 } else { 20 };
        let proto = if v6 { p[6] } else { p[9] };
        let l4_len = p.len() - ip_len;
        let c = !tun_rs::checksum(&p[ip_len..], pseudo_sum(&p, v6, proto, l4_len));
        p[ip_len + csum_at..ip_len + csum_at + 2].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn payload(n: usize, tag: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ tag).collect()
    }

    fn frames(c: &mut Coalescer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        c.flush(|f| out.push(f.to_vec()));
        out
    }

    /// Splits a frame as the kernel would (tun-rs's TSO/USO splitter as the judge).
    fn split(frame: &[u8]) -> Vec<Vec<u8>> {
        let hdr = VirtioNetHdr::decode(&frame[..VIRTIO_NET_HDR_LEN]).unwrap();
        let mut pkt = frame[VIRTIO_NET_HDR_LEN..].to_vec();
        if hdr.gso_type == 0 {
            assert_eq!(hdr.flags, 0, "a lone packet keeps its checksum");
            return vec![pkt];
        }
        let v6 = pkt[0] >> 4 == 6;
        let mut outs = vec![vec![0u8; 2048]; 64];
        let mut sizes = vec![0; 64];
        let n = gso_split(&mut pkt, hdr, &mut outs, &mut sizes, 0, v6).unwrap();
        (0..n).map(|i| outs[i][..sizes[i]].to_vec()).collect()
    }

    /// The partial checksum of a coalesced frame, completed as the kernel would for the
    /// frame as one packet, makes a valid transport checksum.
    fn assert_partial_checksum_completes(frame: &[u8]) {
        let h = VirtioNetHdr::decode(&frame[..VIRTIO_NET_HDR_LEN]).unwrap();
        let mut p = frame[VIRTIO_NET_HDR_LEN..].to_vec();
        assert!(crate::datapath::finish_checksum(
            &mut p,
            h.csum_start,
            h.csum_offset
        ));
        let v6 = p[0] >> 4 == 6;
        let (ip_len, proto) = if v6 { (40, p[6]) } else { (20, p[9]) };
        let l4 = p.len() - ip_len;
        assert_eq!(
            tun_rs::checksum(&p[ip_len..], pseudo_sum(&p, v6, proto, l4)),
            0xffff
        );
        if !v6 {
            assert_eq!(
                tun_rs::checksum(&p[..20], 0),
                0xffff,
                "IPv4 header checksum"
            );
        }
    }

    #[test]
    fn tcp_segments_become_one_frame_that_splits_back_into_them() {
        for v6 in [true, false] {
            let mut c = Coalescer::new(8, true, true);
            let mut sent = Vec::new();
            let mut seq = 1000u32;
            for i in 0..5u16 {
                let len = if i == 4 { 300 } else { 1348 };
                let flags = if i == 4 { TCP_ACK | TCP_PSH } else { TCP_ACK };
                let p = tcp(v6, seq, 77, flags, &payload(len, i as u8), 100 + i);
                seq += len as u32;
                assert!(c.push(&p));
                sent.push(p);
            }
            let f = frames(&mut c);
            assert_eq!(f.len(), 1, "v6 {v6}");
            let h = VirtioNetHdr::decode(&f[0][..VIRTIO_NET_HDR_LEN]).unwrap();
            let ip_len = if v6 { 40 } else { 20 };
            assert_eq!(h.flags, F_NEEDS_CSUM);
            assert_eq!(h.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!(
                (h.hdr_len, h.gso_size, h.csum_start, h.csum_offset),
                (ip_len + 32, 1348, ip_len, 16)
            );
            assert_eq!(split(&f[0]), sent, "v6 {v6}");
            assert_partial_checksum_completes(&f[0]);
            assert_eq!(
                c.stats,
                GroStats {
                    packets: 5,
                    frames: 1,
                    bad_checksum: 0
                }
            );
        }
    }

    #[test]
    fn udp_datagrams_coalesce_only_when_the_device_takes_uso() {
        for v6 in [true, false] {
            let sent: Vec<Vec<u8>> = (0..4u16)
                .map(|i| {
                    udp(
                        v6,
                        &payload(if i == 3 { 100 } else { 1300 }, i as u8),
                        7 + i,
                    )
                })
                .collect();
            let mut c = Coalescer::new(8, true, true);
            sent.iter().for_each(|p| assert!(c.push(p)));
            let f = frames(&mut c);
            assert_eq!(f.len(), 1);
            let h = VirtioNetHdr::decode(&f[0][..VIRTIO_NET_HDR_LEN]).unwrap();
            assert_eq!(
                (h.gso_type, h.gso_size, h.csum_offset),
                (GSO_UDP_L4, 1300, 6)
            );
            assert_eq!(split(&f[0]), sent, "v6 {v6}");
            assert_partial_checksum_completes(&f[0]);
            let mut c = Coalescer::new(8, true, false);
            sent.iter().for_each(|p| assert!(c.push(p)));
            let f = frames(&mut c);
            assert_eq!(f.len(), 4);
            assert_eq!(f.iter().flat_map(|f| split(f)).collect::<Vec<_>>(), sent);
        }
    }

    /// Pushes `pkts`, returns the packets as the kernel would see them, frame by frame.
    fn through(c: &mut Coalescer, pkts: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
        pkts.iter().for_each(|p| assert!(c.push(p)));
        frames(c).iter().map(|f| split(f)).collect()
    }

    #[test]
    fn what_must_not_be_coalesced_is_written_apart_and_in_order() {
        let v6 = true;
        let seg = |seq: u32, ack: u32, flags: u8, len: usize| {
            tcp(v6, seq, ack, flags, &payload(len, seq as u8), 1)
        };
        let mut c = Coalescer::new(16, true, true);
        // A gap in the sequence, a different ACK, a SYN and FIN, a PSH in the middle, a
        // short segment followed by a full one.
        type Case = (&'static str, Vec<Vec<u8>>, Vec<usize>);
        let cases: Vec<Case> = vec![
            (
                "gap",
                vec![seg(0, 1, TCP_ACK, 100), seg(200, 1, TCP_ACK, 100)],
                vec![1, 1],
            ),
            (
                "ack",
                vec![seg(0, 1, TCP_ACK, 100), seg(100, 2, TCP_ACK, 100)],
                vec![1, 1],
            ),
            (
                "fin",
                vec![seg(0, 1, TCP_ACK, 100), seg(100, 1, TCP_ACK | 1, 100)],
                vec![1, 1],
            ),
            (
                "psh",
                vec![
                    seg(0, 1, TCP_ACK, 100),
                    seg(100, 1, TCP_ACK | TCP_PSH, 100),
                    seg(200, 1, TCP_ACK, 100),
                ],
                vec![2, 1],
            ),
            (
                "short",
                vec![
                    seg(0, 1, TCP_ACK, 100),
                    seg(100, 1, TCP_ACK, 50),
                    seg(150, 1, TCP_ACK, 100),
                ],
                vec![2, 1],
            ),
            (
                "bigger",
                vec![seg(0, 1, TCP_ACK, 100), seg(100, 1, TCP_ACK, 200)],
                vec![1, 1],
            ),
            (
                "pure ack",
                vec![seg(0, 1, TCP_ACK, 0), seg(0, 1, TCP_ACK, 0)],
                vec![1, 1],
            ),
            (
                // A pure ACK (or any packet that cannot join) between two segments: the
                // second may not overtake it.
                "ack between",
                vec![
                    seg(0, 1, TCP_ACK, 100),
                    seg(100, 1, TCP_ACK, 0),
                    seg(100, 1, TCP_ACK, 100),
                ],
                vec![1, 1, 1],
            ),
        ];
        for (what, pkts, shape) in cases {
            let got = through(&mut c, &pkts);
            assert_eq!(
                got.iter().map(Vec::len).collect::<Vec<_>>(),
                shape,
                "{what}"
            );
            assert_eq!(
                got.concat(),
                pkts,
                "{what}: the packets, unchanged and in order"
            );
        }
    }

    #[test]
    fn interleaved_flows_keep_their_own_order() {
        let a = |i: u32| tcp(true, i * 100, 1, TCP_ACK, &payload(100, i as u8), 1);
        let b = |i: u32| udp(true, &payload(80, 50 + i as u8), 1);
        let pkts = vec![a(0), b(0), a(1), b(1), a(2), b(2)];
        let mut c = Coalescer::new(8, true, true);
        let got = through(&mut c, &pkts);
        assert_eq!(got, vec![vec![a(0), a(1), a(2)], vec![b(0), b(1), b(2)]]);
    }

    #[test]
    fn a_bad_checksum_is_left_for_the_kernel_to_drop() {
        let good = |seq: u32| tcp(true, seq, 1, TCP_ACK, &payload(100, 3), 1);
        let mut bad = good(100);
        *bad.last_mut().unwrap() ^= 1;
        let mut c = Coalescer::new(8, true, true);
        for p in [good(0), bad.clone(), good(200)] {
            assert!(c.push(&p));
        }
        let f = frames(&mut c);
        // The bad one alone, unchanged (the kernel verifies and drops it); the next
        // segment does not continue the first run (its sequence does not follow).
        assert_eq!(f.len(), 3);
        assert_eq!(&f[1][VIRTIO_NET_HDR_LEN..], &bad[..]);
        assert_eq!(f[1][..VIRTIO_NET_HDR_LEN], [0; VIRTIO_NET_HDR_LEN]);
        assert_eq!(c.stats.bad_checksum, 1);
    }

    #[test]
    fn runs_stop_at_64_kib_and_without_offload_nothing_is_touched() {
        let pkts: Vec<Vec<u8>> = (0..60u32)
            .map(|i| tcp(true, i * 1348, 1, TCP_ACK, &payload(1348, i as u8), 1))
            .collect();
        let mut c = Coalescer::new(8, true, true);
        let got = through(&mut c, &pkts);
        assert!(
            got.len() == 2 && got[0].len() == 48,
            "{:?}",
            got.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(got.concat(), pkts);
        let mut c = Coalescer::new(64, false, false);
        pkts.iter().for_each(|p| assert!(c.push(p)));
        let f = frames(&mut c);
        assert_eq!(f, pkts, "no header, no coalescing");
    }

    #[test]
    fn a_full_batch_is_reported() {
        let mut c = Coalescer::new(2, true, true);
        assert!(c.push(&udp(true, &[1; 10], 1)));
        assert!(!c.is_full());
        assert!(c.push(&tcp(true, 0, 1, TCP_ACK, &[2; 10], 1)));
        assert!(c.is_full());
        assert!(
            !c.push(&udp(true, &[3; 10], 1)),
            "refused, not lost or overflowed"
        );
        assert_eq!(c.stats.packets, 2);
        assert_eq!(frames(&mut c).len(), 2);
        assert!(c.is_empty());
    }

    #[test]
    fn malformed_packets_pass_through_unchanged() {
        // Every truncation and every header octet of valid packets set to a few values:
        // nothing panics, and what goes in comes out (as frames that split back to it).
        let seeds = [
            tcp(true, 5, 1, TCP_ACK, &payload(40, 1), 1),
            tcp(false, 5, 1, TCP_ACK, &payload(40, 1), 1),
            udp(true, &payload(30, 2), 1),
            udp(false, &payload(30, 2), 1),
        ];
        let mut c = Coalescer::new(6, true, true);
        for seed in &seeds {
            let mut inputs: Vec<Vec<u8>> = (0..seed.len()).map(|n| seed[..n].to_vec()).collect();
            for at in 0..72.min(seed.len()) {
                for v in [0u8, 1, 0x45, 0x60, 0x7f, 0xff] {
                    let mut p = seed.clone();
                    p[at] = v;
                    inputs.push(p);
                }
            }
            for chunk in inputs.chunks(3) {
                // Each with a valid follower that might try to join it.
                let mut sent = Vec::new();
                for p in chunk {
                    sent.push(p.clone());
                    sent.push(seed.clone());
                }
                sent.iter().for_each(|p| assert!(c.push(p)));
                let mut out = Vec::new();
                c.flush(|f| out.push(f.to_vec()));
                let n: usize = out
                    .iter()
                    .map(|f| {
                        let h = VirtioNetHdr::decode(&f[..VIRTIO_NET_HDR_LEN]).unwrap();
                        if h.gso_type == 0 { 1 } else { split(f).len() }
                    })
                    .sum();
                assert_eq!(n, sent.len());
            }
        }
    }
}

//! The receive coalescer of `ipsec-peer` (`examples::gro::Coalescer`), fed with decrypted
//! inner packets: authenticated, but written by the peer, so anything.
//!
//! Input: packets, each a 2-octet big-endian length and that many octets. Checks: no panic;
//! no frame above the 64 KiB IP limit; every packet comes out, either alone and unchanged
//! (empty virtio-net header) or as one segment of a GSO frame whose header is consistent.
//! In the fuzz crate behind its `peer-config` feature (which pulls in `examples`); the
//! corpus is replayed by `examples/tests/fuzz_corpus.rs`.
#![allow(dead_code)]

use examples::gro::Coalescer;

const VNET: usize = 10;

pub fn check_coalescer(data: &[u8]) {
    let mut packets = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        packets.push(&rest[2..2 + n]);
        rest = &rest[2 + n..];
    }
    let mut c = Coalescer::new(4, true, true);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for p in &packets {
        if !c.push(p) {
            c.flush(|f| frames.push(f.to_vec()));
            assert!(c.push(p), "an empty batch takes a packet");
        }
    }
    c.flush(|f| frames.push(f.to_vec()));
    assert!(c.is_empty());
    let mut segments = 0;
    let mut lone = Vec::new();
    for f in &frames {
        assert!(
            f.len() >= VNET && f.len() - VNET <= 65535,
            "frame of {} octets",
            f.len()
        );
        let (hdr, pkt) = f.split_at(VNET);
        let gso_type = hdr[1];
        if gso_type == 0 {
            assert_eq!(hdr, [0; VNET], "a lone packet has an empty header");
            lone.push(pkt.to_vec());
            segments += 1;
            continue;
        }
        let le = |i: usize| usize::from(u16::from_le_bytes([hdr[i], hdr[i + 1]]));
        let (hdr_len, gso_size, csum_start, csum_offset) = (le(2), le(4), le(6), le(8));
        assert_eq!(hdr[0], 1, "NEEDS_CSUM");
        assert!(matches!(gso_type, 1 | 4 | 5), "gso_type {gso_type}");
        assert!(gso_size > 0 && hdr_len < pkt.len() && csum_start < hdr_len);
        assert!(csum_start + csum_offset + 2 <= hdr_len);
        let payload = pkt.len() - hdr_len;
        assert!(payload > gso_size, "a frame holds at least two segments");
        segments += payload.div_ceil(gso_size);
    }
    assert_eq!(segments, packets.len(), "packets in, segments out");
    // Lone packets are the inputs themselves, in their order.
    let mut it = packets.iter();
    for l in &lone {
        assert!(
            it.any(|p| p == &l.as_slice()),
            "a lone packet that was not pushed"
        );
    }
}

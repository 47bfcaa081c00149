//! The receive coalescer allocates nothing per packet: a counting global allocator around
//! 20 000 packets (TCP runs, UDP runs, lone packets, a bad checksum) pushed and flushed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use examples::gro::Coalescer;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An IPv6 TCP segment (20-octet header, flags ACK) with a correct checksum.
fn tcp(seq: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
    p[4..6].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    p.extend_from_slice(&[0xfd, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let mut th = vec![0u8; 20];
    th[0..4].copy_from_slice(&[0x14, 0x51, 0x9c, 0x40]);
    th[4..8].copy_from_slice(&seq.to_be_bytes());
    th[12] = 5 << 4;
    th[13] = 0x10;
    th.extend((0..len).map(|i| i as u8));
    let mut sum: u64 = p[8..40]
        .chunks_exact(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    sum += 6 + th.len() as u64;
    let c = !tun_rs::checksum(&th, sum);
    th[16..18].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&th);
    p
}

#[test]
fn coalescing_allocates_nothing_per_packet() {
    let mut packets = Vec::new();
    for i in 0..40u32 {
        packets.push(tcp(i * 1000, 1000));
    }
    packets.push(tcp(1, 10)); // out of sequence: a run of its own
    let mut bad = tcp(40_000, 1000);
    bad[60] ^= 1;
    packets.push(bad);
    packets.push(vec![0x60; 48]); // not a candidate
    let mut c = Coalescer::new(64, true, true);
    let mut frames = 0usize;
    let mut round = |c: &mut Coalescer| {
        for p in &packets {
            if !c.push(p) {
                c.flush(|f| frames += f.len().min(1));
                assert!(c.push(p));
            }
        }
        c.flush(|f| frames += f.len().min(1));
    };
    // Warm-up: the buffers reach their size.
    round(&mut c);
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..460 {
        round(&mut c);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations in 20 000 packets");
    assert_eq!(c.stats.packets, 461 * packets.len() as u64);
    assert_eq!(c.stats.bad_checksum, 461);
    assert_eq!(
        frames,
        461 * 4,
        "one run, the out-of-sequence one, the bad one, the odd one"
    );
}

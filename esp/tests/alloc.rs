//! Zero heap allocations per packet in steady state, measured with a counting global
//! allocator around 10 000 encapsulations and decapsulations per suite.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use esp::{Mode, Output};

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

#[test]
fn no_allocation_per_packet() {
    // One test function: the counter is global, parallel tests would disturb it.
    let setups = [
        Setup::simple(Suite::Gcm128),
        Setup::simple(Suite::Gcm256),
        Setup {
            esn: true,
            output: Output::Ip,
            encap: true,
            outer_v6: true,
            ..Setup::simple(Suite::ChaCha)
        },
        Setup {
            mode: Mode::Transport,
            output: Output::Ip,
            ..Setup::simple(Suite::CbcSha256)
        },
    ];
    for s in setups {
        let mut pair = Pair::new(s);
        let inner = inner_packet(&s, &[0x33; 1000]);
        let head = pair.tx.headroom(pair.out).unwrap();
        let mut buf = vec![0u8; head + inner.len() + esp::MAX_TAILROOM];
        let mut rx = vec![0u8; buf.len()];
        let mut run = |pair: &mut Pair, n: usize| {
            for _ in 0..n {
                buf[head..head + inner.len()].copy_from_slice(&inner);
                let r = pair
                    .tx
                    .encapsulate(t0(), pair.out, &mut buf, head..head + inner.len())
                    .unwrap();
                let len = r.len();
                rx[..len].copy_from_slice(&buf[r]);
                let d = match s.output {
                    Output::Ip => pair.rx.decapsulate_ip(t0(), &mut rx[..len]),
                    _ => pair.rx.decapsulate(t0(), &mut rx[..len]),
                }
                .unwrap();
                assert_eq!(rx[d.range].len(), inner.len());
                // A replay is dropped without allocating either.
                assert!(pair.rx.decapsulate_ip(t0(), &mut rx[..0]).is_err());
            }
        };
        run(&mut pair, 10); // warm up lazily initialised state (tracing callsites, ...)
        let before = ALLOCS.load(Ordering::Relaxed);
        run(&mut pair, 10_000);
        let after = ALLOCS.load(Ordering::Relaxed);
        assert_eq!(after - before, 0, "{s:?}: allocations in 10k encap+decap");
        assert_eq!(pair.rx.stats(pair.inb).unwrap().packets, 10_010);
    }
}

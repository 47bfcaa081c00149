//! `ipsec-core` harnesses: the anti-replay window against a naive model, and traffic
//! selectors (text round trip, intersection algebra, matching).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::TrafficSelector;
use ipsec_core::replay::{MAX_WINDOW, ReplayError, ReplayWindow};
use ipsec_core::ts::PortRange;

use crate::input::{Input, Output};

// ------------------------------------------------------------------ replay window

/// The obviously-correct window: everything ever accepted, and the top.
struct Model {
    seen: BTreeSet<u64>,
    top: u64,
    size: u64,
    esn: bool,
}

impl Model {
    fn check(&self, s: u64) -> Result<(), ReplayError> {
        if s == 0 {
            return Err(ReplayError::Zero);
        }
        if !self.esn && s > u64::from(u32::MAX) {
            return Err(ReplayError::TooOld);
        }
        if self.size == 0 || s > self.top {
            return Ok(());
        }
        if self.top - s >= self.size {
            return Err(ReplayError::TooOld);
        }
        if self.seen.contains(&s) {
            Err(ReplayError::Replayed)
        } else {
            Ok(())
        }
    }

    fn update(&mut self, s: u64) {
        if self.check(s).is_ok() {
            self.seen.insert(s);
            self.top = self.top.max(s);
        }
    }
}

const BASES: [u64; 6] = [
    0,
    (1 << 32) - 3000,
    7 << 32,
    u64::MAX - 200_000,
    1 << 63,
    (1 << 32) + 5,
];

/// Input: `size: u16` (plus a bit for 65536), `flags` (bit 0 ESN), `base` choice or raw
/// u64, then ops `(kind, offset)` applied to `base + offset`.
pub fn check_replay_window(data: &[u8]) {
    let mut input = Input::new(data);
    let raw_size = u32::from(input.u16());
    let flags = input.u8();
    let size = if flags & 2 != 0 {
        MAX_WINDOW
    } else {
        raw_size % 4097
    };
    let esn = flags & 1 != 0;
    let sel = input.u8();
    let base = match BASES.get(usize::from(sel)) {
        Some(&b) => b,
        None => input.u64(),
    };
    let Some(mut w) = ReplayWindow::new(size, esn) else {
        panic!("size {size} within MAX_WINDOW refused");
    };
    let mut m = Model {
        seen: BTreeSet::new(),
        top: 0,
        size: u64::from(size),
        esn,
    };
    for _ in 0..2000 {
        if input.is_empty() {
            break;
        }
        let kind = input.u8();
        let off = match kind >> 4 {
            0 => u64::from(input.u32()),
            1 => u64::from(input.u8()),
            _ => u64::from(input.u16()),
        };
        let s = base.wrapping_add(off);
        match kind & 3 {
            0 => assert_eq!(w.check(s), m.check(s), "check({s}) top {}", m.top),
            1 => {
                assert_eq!(w.check(s), m.check(s), "check({s}) top {}", m.top);
                if w.check(s).is_ok() {
                    w.update(s);
                    m.update(s);
                }
            }
            2 => {
                // Update without checking first: must be a no-op when check refuses.
                w.update(s);
                m.update(s);
            }
            _ => {
                // ESN inference: any true sequence number from the bottom of the window to
                // 2^32 - w beyond the top is recovered from its low half. Without a window
                // (size 0) inference uses a nominal one of 2^31 (nearest to the top).
                let wsize = if size == 0 {
                    1u64 << 31
                } else {
                    u64::from(size)
                };
                let lo = m.top.saturating_sub(wsize - 1).max(1);
                let hi = m.top.saturating_add((1 << 32) - wsize);
                let t = lo.wrapping_add(off % (hi - lo + 1).max(1));
                if !esn {
                    assert_eq!(w.infer_seq(t as u32), u64::from(t as u32));
                } else if (lo..=hi).contains(&t) && m.top.checked_add(1 << 32).is_some() {
                    assert_eq!(w.infer_seq(t as u32), t, "infer top {} w {wsize}", m.top);
                }
            }
        }
        assert_eq!(w.top(), m.top);
    }
}

/// Seeds for the replay window.
pub fn replay_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (n, (size, flags, base)) in [
        (64u16, 0u8, 0u8),
        (1024, 1, 1),
        (0, 1, 2),
        (128, 1, 0),
        (4096, 3, 5),
    ]
    .into_iter()
    .enumerate()
    {
        let mut o = Output::default();
        o.u16(size).u8(flags).u8(base);
        for i in 0..40u8 {
            let off = i.wrapping_mul(37) % 200;
            o.u8(0x11 + (i % 4)).u8(off);
        }
        out.push((format!("window-{n}"), o.data));
    }
    out
}

// ------------------------------------------------------------------ traffic selectors

/// First byte even: parse the rest as text. Odd: structured selectors and probes.
pub fn check_traffic_selectors(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        if let Ok(s) = std::str::from_utf8(rest) {
            text(s);
        }
    } else {
        algebra(&mut Input::new(rest));
    }
}

fn text(s: &str) {
    let Ok(t) = s.parse::<TrafficSelector>() else {
        return;
    };
    let shown = t.to_string();
    let back: TrafficSelector = shown
        .parse()
        .unwrap_or_else(|e| panic!("{s:?} displays as {shown:?}, which does not parse: {e}"));
    assert_eq!(back, t, "{s:?} displays as {shown:?}");
}

fn addr(input: &mut Input<'_>, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(input.u32()))
    } else {
        let hi = u128::from(input.u64());
        let lo = u128::from(input.u64());
        IpAddr::V6(Ipv6Addr::from((hi << 64) | lo))
    }
}

fn selector(input: &mut Input<'_>, v4: bool) -> TrafficSelector {
    let kind = input.u8();
    let mut t = if kind & 1 != 0 {
        TrafficSelector::from_prefix(addr(input, v4), input.u8() % if v4 { 33 } else { 129 })
            .expect("prefix within width")
    } else {
        let (a, b) = (addr(input, v4), addr(input, v4));
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        TrafficSelector::new(a, b).expect("ordered range")
    };
    let proto = match (kind >> 1) & 7 {
        0 | 1 => 0,
        2 => 6,
        3 => 17,
        4 => 1,
        5 => 58,
        _ => input.u8(),
    };
    let ports = match (kind >> 4) & 3 {
        0 => PortRange::ANY,
        1 => PortRange::Opaque,
        _ => {
            let (a, b) = (input.u16(), input.u16());
            PortRange::from_wire(a.min(b), a.max(b)).expect("ordered range")
        }
    };
    if proto != 0 || ports != PortRange::ANY {
        t = t.with_protocol(proto, ports);
    }
    t
}

fn algebra(input: &mut Input<'_>) {
    let v4 = input.u8() & 1 == 0;
    let a = selector(input, v4);
    let b = selector(input, v4);
    let c = selector(input, v4);
    for t in [&a, &b, &c] {
        text(&t.to_string());
        assert_eq!(t.intersect(t).as_ref(), Some(t), "idempotent: {t}");
        assert!(t.contains(t));
    }
    let ab = a.intersect(&b);
    assert_eq!(ab, b.intersect(&a), "commutative: {a} {b}");
    if let Some(i) = &ab {
        assert!(
            a.contains(i) && b.contains(i),
            "{i} = {a} ∩ {b} is within both"
        );
        assert_eq!(i.intersect(i).as_ref(), Some(i));
    }
    let left = ab.and_then(|x| x.intersect(&c));
    let right = b.intersect(&c).and_then(|x| a.intersect(&x));
    assert_eq!(left, right, "associative: {a} {b} {c}");
    // Matching: the intersection matches exactly what both match.
    for _ in 0..8 {
        if input.is_empty() {
            break;
        }
        let k = input.u8();
        let base = match k & 3 {
            0 => a.start(),
            1 => a.end(),
            2 => b.start(),
            _ => b.end(),
        };
        let p = match (k >> 2) & 3 {
            0 => base,
            1 => step(base, 1),
            2 => step(base, -1),
            _ => addr(input, v4),
        };
        let proto = match (k >> 4) & 3 {
            0 => a.ip_protocol,
            1 => b.ip_protocol,
            _ => input.u8(),
        };
        let port = if k & 0x40 != 0 {
            None
        } else {
            Some(input.u16())
        };
        let both = a.matches(p, proto, port) && b.matches(p, proto, port);
        let via = ab.is_some_and(|i| i.matches(p, proto, port));
        assert_eq!(
            via, both,
            "{a} ∩ {b} = {ab:?} on {p} proto {proto} port {port:?}"
        );
    }
}

fn step(a: IpAddr, d: i8) -> IpAddr {
    match a {
        IpAddr::V4(x) => IpAddr::V4(Ipv4Addr::from(
            u32::from(x).wrapping_add_signed(i32::from(d)),
        )),
        IpAddr::V6(x) => IpAddr::V6(Ipv6Addr::from(
            u128::from(x).wrapping_add_signed(i128::from(d)),
        )),
    }
}

/// Seeds for the selectors.
pub fn ts_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (n, s) in [
        "fd01::/64",
        "10.1.2.3/16",
        "10.0.0.1-10.0.0.9",
        "10.0.0.1..10.0.0.9[tcp/443]",
        "::/0[udp/1000-2000]",
        "::/0[17/OPAQUE]",
        "0.0.0.0/0[icmp/2048]",
        "192.0.2.7",
    ]
    .iter()
    .enumerate()
    {
        out.push((format!("text-{n}"), [&[0u8][..], s.as_bytes()].concat()));
    }
    for n in 0..4u8 {
        let mut o = Output::default();
        o.u8(1).u8(n & 1);
        for i in 0..3u8 {
            o.u8(n.wrapping_mul(0x35).wrapping_add(i * 0x23));
            o.raw(&[10, i, 0, 0, 10, i, 255, 255, 24 + i]);
            o.raw(&[0; 16]);
        }
        for i in 0..8u8 {
            o.u8(i.wrapping_mul(0x29)).u16(80 + u16::from(i)).u8(6);
        }
        out.push((format!("algebra-{n}"), o.data));
    }
    out
}

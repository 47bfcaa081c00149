//! Round trips for every suite × mode × inner/outer family × ESN × UDP encapsulation ×
//! output format, judged by etherparse; transport mode with IPv6 extension headers.

mod common;

use common::*;
use esp::{Mode, Output};
use etherparse::{IpNumber, Ipv6Slice, SlicedPacket};
use proptest::prelude::*;

fn all_setups() -> Vec<Setup> {
    let mut v = Vec::new();
    for suite in SUITES {
        for mode in [Mode::Tunnel, Mode::Transport] {
            for inner_v6 in [false, true] {
                for outer_v6 in [false, true] {
                    if mode == Mode::Transport && inner_v6 != outer_v6 {
                        continue;
                    }
                    for esn in [false, true] {
                        for encap in [false, true] {
                            for output in [Output::Esp, Output::Ip] {
                                v.push(Setup {
                                    suite,
                                    mode,
                                    inner_v6,
                                    outer_v6,
                                    esn,
                                    encap,
                                    output,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    v
}

fn iv_icv(s: Suite) -> (usize, usize, usize) {
    match s {
        Suite::CbcSha256 => (16, 16, 16),
        _ => (8, 16, 4),
    }
}

/// Sends `packets` copies of a packet with `payload_len` octets of UDP payload and checks
/// every step.
fn roundtrip(s: Setup, payload_len: usize, packets: u64) {
    let mut pair = Pair::new(s);
    let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
    let inner = inner_packet(&s, &payload);
    let (iv, icv, align) = iv_icv(s.suite);
    for n in 1..=packets {
        let wire = pair.encap(&inner).unwrap();
        assert_eq!(
            wire.len(),
            pair.tx.overhead(pair.out, inner.len()).unwrap() + inner.len()
                - if s.mode == Mode::Transport {
                    align - 1 - pad_of(&s, &inner, align)
                } else {
                    0
                }
                - match (s.mode, s.output, s.outer_v6) {
                    (Mode::Transport, Output::Esp, false) => 20,
                    (Mode::Transport, Output::Esp, true) => 40,
                    _ => 0,
                },
            "{s:?}"
        );
        let esp_part = match s.output {
            Output::Ip => {
                let esp = judge_outer(&wire, s.encap);
                if s.mode == Mode::Tunnel {
                    // Outer addresses are the SA's.
                    let sliced = SlicedPacket::from_ip(&wire).unwrap();
                    let (a, b) = outer_addrs(s.outer_v6);
                    let (src, dst) = match sliced.net.unwrap() {
                        etherparse::NetSlice::Ipv4(h) => (
                            std::net::IpAddr::from(h.header().source()),
                            std::net::IpAddr::from(h.header().destination()),
                        ),
                        etherparse::NetSlice::Ipv6(h) => (
                            std::net::IpAddr::from(h.header().source()),
                            std::net::IpAddr::from(h.header().destination()),
                        ),
                        _ => unreachable!(),
                    };
                    assert_eq!((src, dst), (a, b));
                }
                esp
            }
            _ => wire.clone(),
        };
        assert_eq!(&esp_part[..4], &SPI.to_be_bytes());
        assert_eq!(&esp_part[4..8], &(n as u32).to_be_bytes());
        let ct_len = esp_part.len() - 8 - iv - icv;
        assert_eq!(ct_len % align, 0, "{s:?}: ciphertext alignment");

        let (out, d) = pair
            .decap(&wire)
            .unwrap_or_else(|e| panic!("{s:?} len {payload_len}: {e:?}"));
        assert_eq!(d.seq, n);
        assert_eq!(d.sa, pair.inb);
        match (s.mode, s.output) {
            (Mode::Tunnel, _) => {
                assert_eq!(out, inner, "{s:?}");
                assert_eq!(d.next_header, if s.inner_v6 { 41 } else { 4 });
                let sliced = SlicedPacket::from_ip(&out).unwrap();
                assert!(sliced.transport.is_some());
            }
            (Mode::Transport, Output::Ip) => {
                assert_eq!(out, inner, "{s:?}: rebuilt packet equals the original");
                assert_eq!(d.next_header, 17);
            }
            (Mode::Transport, _) => {
                let hdr = if s.outer_v6 { 40 } else { 20 };
                assert_eq!(out, &inner[hdr..], "{s:?}: upper-layer payload");
                assert_eq!(d.next_header, 17);
            }
        }
    }
    let st = pair.rx.stats(pair.inb).unwrap();
    assert_eq!(st.packets, packets);
    let tx = pair.tx.stats(pair.out).unwrap();
    assert_eq!(tx.packets, packets);
    assert_eq!(tx.bytes, st.bytes);
    assert_eq!(st.drops.total(), 0);
}

/// Padding actually used for a transport-mode packet (the tailroom is an upper bound).
fn pad_of(s: &Setup, inner: &[u8], align: usize) -> usize {
    let hdr = if s.outer_v6 { 40 } else { 20 };
    let upper = inner.len() - hdr;
    (align - (upper + 2) % align) % align
}

#[test]
fn every_combination_round_trips() {
    let setups = all_setups();
    assert_eq!(setups.len(), 4 * (4 + 2) * 8);
    for s in setups {
        for len in [0, 1, 2, 3, 5, 16, 255, 1400] {
            roundtrip(s, len, 2);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn random_sizes_round_trip(idx in 0usize..192, len in 0usize..1500) {
        let setups = all_setups();
        roundtrip(setups[idx % setups.len()], len, 1);
    }
}

#[test]
fn transport_ipv6_with_extension_headers() {
    for suite in SUITES {
        for encap in [false, true] {
            for output in [Output::Ip, Output::Esp] {
                let s = Setup {
                    suite,
                    mode: Mode::Transport,
                    inner_v6: true,
                    outer_v6: true,
                    esn: true,
                    encap,
                    output,
                };
                let mut pair = Pair::new(s);
                let (a, b) = outer_addrs(true);
                for len in [0usize, 7, 100, 1200] {
                    let payload = vec![0x5a; len];
                    let pkt = ipv6_with_ext_headers(a, b, &payload);
                    // The independent parser agrees the input is well formed.
                    let before = Ipv6Slice::from_slice(&pkt).unwrap();
                    assert_eq!(before.payload().ip_number, IpNumber::UDP);
                    let wire = pair.encap(&pkt).unwrap();
                    if output == Output::Ip {
                        // ESP (or UDP) comes after hop-by-hop, dest opts and fragment.
                        let after = Ipv6Slice::from_slice(&wire).unwrap();
                        let want = if encap {
                            IpNumber::UDP
                        } else {
                            IpNumber::ENCAPSULATING_SECURITY_PAYLOAD
                        };
                        assert_eq!(after.payload().ip_number, want);
                        assert_eq!(
                            &wire[..8],
                            &{
                                let mut h = pkt[..8].to_vec();
                                h[4..6].copy_from_slice(&((wire.len() - 40) as u16).to_be_bytes());
                                h
                            }[..]
                        );
                        assert_eq!(&wire[40..56], &pkt[40..56], "extension headers kept");
                        assert_eq!(
                            wire[56],
                            if encap { 17 } else { 50 },
                            "fragment header's next header"
                        );
                        judge_outer(&wire, encap);
                    }
                    let (out, d) = pair.decap(&wire).unwrap();
                    assert_eq!(d.next_header, 17);
                    if output == Output::Ip {
                        assert_eq!(out, pkt, "rebuilt with its extension headers");
                        let p = SlicedPacket::from_ip(&out).unwrap();
                        assert!(p.transport.is_some());
                    } else {
                        assert_eq!(out, &pkt[64..]);
                    }
                }
            }
        }
    }
}

/// IPv4 options stay in the header in transport mode.
#[test]
fn transport_ipv4_with_options() {
    let s = Setup {
        mode: Mode::Transport,
        output: Output::Ip,
        ..Setup::simple(Suite::Gcm128)
    };
    let mut pair = Pair::new(s);
    let mut pkt = inner_packet(&s, b"options!");
    // Insert a 4-octet option (NOP, NOP, NOP, EOL) and fix IHL, length and checksum.
    pkt.splice(20..20, [1, 1, 1, 0]);
    pkt[0] = 0x46;
    let tl = pkt.len() as u16;
    pkt[2..4].copy_from_slice(&tl.to_be_bytes());
    pkt[10..12].copy_from_slice(&[0, 0]);
    let (h, _) = etherparse::Ipv4Header::from_slice(&pkt).unwrap();
    let c = h.calc_header_checksum();
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
    let wire = pair.encap(&pkt).unwrap();
    judge_outer(&wire, false);
    assert_eq!(&wire[20..24], &[1, 1, 1, 0]);
    let (out, _) = pair.decap(&wire).unwrap();
    assert_eq!(out, pkt);
}

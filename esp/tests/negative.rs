//! Everything that must be refused: tampering, truncation, replays, bad padding, selectors,
//! forged sequence numbers, sequence exhaustion, lifetimes, dummy packets, stale handles.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use esp::{
    Direction, DropReason, EncapError, EspEngine, EspEvent, InstallError, LifetimeKind, Mode,
    Output, SEQ_WARN_MARGIN,
};
use ipsec_core::sa::LifetimeLimits;
use ipsec_core::{RustCrypto, Spi};
use proptest::prelude::*;

fn small_inner(s: &Setup) -> Vec<u8> {
    inner_packet(s, b"payload of a test packet")
}

#[test]
fn every_bit_flip_is_rejected_and_does_not_move_the_window() {
    for suite in SUITES {
        for esn in [false, true] {
            let s = Setup {
                esn,
                ..Setup::simple(suite)
            };
            let mut pair = Pair::new(s);
            let inner = small_inner(&s);
            let w1 = pair.encap(&inner).unwrap();
            for bit in 0..w1.len() * 8 {
                let mut bad = w1.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let r = pair.decap(&bad);
                assert!(r.is_err(), "{suite:?} esn={esn} bit {bit} accepted");
                if bit >= 32 {
                    // Past the SPI every flip is caught by the replay check or the ICV.
                    assert!(
                        matches!(
                            r,
                            Err(DropReason::IntegrityFailed
                                | DropReason::ZeroSequence
                                | DropReason::TooOld { .. })
                        ),
                        "{suite:?} bit {bit}: {r:?}"
                    );
                }
            }
            // The genuine packet still passes: nothing forged moved the window.
            let (out, d) = pair.decap(&w1).unwrap();
            assert_eq!((out, d.seq), (inner, 1));
            assert_eq!(pair.rx.stats(pair.inb).unwrap().packets, 1);
            assert!(pair.rx.engine_stats().unknown_spi >= 32);
        }
    }
}

#[test]
fn truncated_packets_at_every_length() {
    for suite in SUITES {
        for output in [Output::Esp, Output::Ip] {
            let s = Setup {
                output,
                encap: true,
                ..Setup::simple(suite)
            };
            let mut pair = Pair::new(s);
            let w = pair.encap(&small_inner(&s)).unwrap();
            for len in 0..w.len() {
                assert!(pair.decap(&w[..len]).is_err(), "{suite:?} len {len}");
            }
            pair.decap(&w).unwrap();
        }
    }
}

#[test]
fn unknown_spi_replay_and_too_old() {
    let s = Setup::simple(Suite::Gcm256);
    let mut pair = Pair::new(s);
    let inner = small_inner(&s);
    let wires: Vec<_> = (0..200).map(|_| pair.encap(&inner).unwrap()).collect();
    let mut bad = wires[0].clone();
    bad[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_eq!(
        pair.decap(&bad),
        Err(DropReason::UnknownSpi(Spi(0x1234_5678)))
    );
    assert_eq!(pair.rx.engine_stats().unknown_spi, 1);

    pair.decap(&wires[0]).unwrap();
    assert_eq!(pair.decap(&wires[0]), Err(DropReason::Replayed { seq: 1 }));
    pair.decap(&wires[199]).unwrap();
    // Window 128 with top 200: seq 73 is the oldest accepted; seq 2..=72 are too old.
    assert_eq!(pair.decap(&wires[1]), Err(DropReason::TooOld { seq: 2 }));
    assert_eq!(pair.decap(&wires[71]), Err(DropReason::TooOld { seq: 72 }));
    pair.decap(&wires[72]).unwrap();
    assert_eq!(
        pair.decap(&wires[72]),
        Err(DropReason::Replayed { seq: 73 })
    );
    let st = pair.rx.stats(pair.inb).unwrap();
    assert_eq!((st.drops.replayed, st.drops.too_old, st.packets), (2, 2, 3));
    assert_eq!(st.drops.get(DropReason::TooOld { seq: 0 }), 2);
}

#[test]
fn forged_high_sequence_number_does_not_move_the_window() {
    for suite in SUITES {
        let s = Setup::simple(suite);
        let mut pair = Pair::new(s);
        let inner = small_inner(&s);
        let w1 = pair.encap(&inner).unwrap();
        let w2 = pair.encap(&inner).unwrap();
        let mut forged = w2.clone();
        forged[4..8].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(pair.decap(&forged), Err(DropReason::IntegrityFailed));
        // Had the window moved to 100000, seq 1 and 2 would be too old.
        pair.decap(&w2).unwrap();
        pair.decap(&w1).unwrap();
        assert_eq!(pair.rx.stats(pair.inb).unwrap().drops.integrity_failed, 1);
    }
}

/// Builds an ESP packet with the engine's seal routine around a hand-made trailer.
fn hand_sealed(pair: &Pair, seq: u64, body: &[u8], trailer: &[u8]) -> Vec<u8> {
    let (iv, icv) = match pair.setup.suite {
        Suite::CbcSha256 => (16, 16),
        _ => (8, 16),
    };
    let mut esp = vec![0u8; 8 + iv];
    esp.extend_from_slice(body);
    esp.extend_from_slice(trailer);
    esp.extend(std::iter::repeat_n(0u8, icv));
    pair.tx
        .seal_raw_for_testing(pair.out, seq, None, &mut esp)
        .unwrap();
    esp
}

#[test]
fn bad_padding_and_dummy_packets() {
    for suite in SUITES {
        let s = Setup::simple(suite);
        let mut pair = Pair::new(s);
        let inner = udp_packet(ip("10.1.0.5"), ip("10.2.0.7"), &[9; 6]); // 34 octets
        let cbc = suite == Suite::CbcSha256;
        // Valid control: 34 + 12 + 2 = 48 (both alignments).
        let ok_pad: Vec<u8> = (1..=12).chain([12, 4]).collect();
        let w = hand_sealed(&pair, 1, &inner, &ok_pad);
        assert_eq!(pair.decap(&w).unwrap().0, inner);
        // Wrong pad byte.
        let mut bad: Vec<u8> = (1..=12).chain([12, 4]).collect();
        bad[5] = 0;
        let w = hand_sealed(&pair, 2, &inner, &bad);
        assert_eq!(pair.decap(&w), Err(DropReason::BadPadding), "{suite:?}");
        // Pad length beyond the payload.
        let huge: Vec<u8> = (1..=12).chain([200, 4]).collect();
        let w = hand_sealed(&pair, 3, &inner, &huge);
        assert_eq!(pair.decap(&w), Err(DropReason::BadPadding), "{suite:?}");
        // Dummy packet (Next Header 59, RFC 4303 §2.6): dropped silently, counted.
        let dummy_body = if cbc { vec![0u8; 14] } else { vec![0u8; 2] };
        let w = hand_sealed(&pair, 4, &dummy_body, &[0, 59]);
        assert_eq!(pair.decap(&w), Err(DropReason::Dummy));
        // Tunnel mode: Next Header 4 with an IPv6 packet inside.
        let v6 = udp_packet(ip("fd01::5"), ip("fd02::7"), &[1; 2]); // 50 octets
        let pad: Vec<u8> = if cbc {
            (1..=12).chain([12, 4]).collect()
        } else {
            vec![4]
        };
        let w = hand_sealed(&pair, 5, &v6, &pad);
        assert_eq!(pair.decap(&w), Err(DropReason::BadInnerPacket), "{suite:?}");
        let st = pair.rx.stats(pair.inb).unwrap();
        assert_eq!(st.drops.bad_padding, 2);
        assert_eq!(st.drops.dummy, 1);
        assert_eq!(st.drops.bad_inner_packet, 1);
        assert_eq!(st.packets, 1);
    }
}

#[test]
fn inner_packet_outside_traffic_selectors() {
    for inner_v6 in [false, true] {
        let s = Setup {
            inner_v6,
            ..Setup::simple(Suite::ChaCha)
        };
        let mut pair = Pair::new(s);
        let (a, b) = inner_addrs(inner_v6);
        let (x, y) = if inner_v6 {
            (ip("fd09::1"), ip("fd0a::1"))
        } else {
            (ip("10.9.0.1"), ip("10.10.0.1"))
        };
        for (src, dst) in [(x, b), (a, y), (b, a)] {
            let w = pair.encap(&udp_packet(src, dst, b"x")).unwrap();
            assert_eq!(
                pair.decap(&w),
                Err(DropReason::TsMismatch),
                "{src} -> {dst}"
            );
        }
        let w = pair.encap(&udp_packet(a, b, b"x")).unwrap();
        pair.decap(&w).unwrap();
        assert_eq!(pair.rx.stats(pair.inb).unwrap().drops.ts_mismatch, 3);
    }
}

#[test]
fn port_selectors_and_fragments() {
    let s = Setup::simple(Suite::Gcm128);
    let mut o = params(&s, Direction::Outbound);
    let mut i = params(&s, Direction::Inbound);
    // Only UDP to port 5678 on B's side.
    o.ts_remote = vec![ts("10.2.0.0/16[udp/5678]")];
    i.ts_local = vec![ts("10.2.0.0/16[udp/5678]")];
    let mut pair = Pair::with_params(s, o, i);
    let good = udp_packet(ip("10.1.0.5"), ip("10.2.0.7"), b"abc"); // ports 1234 -> 5678
    let w = pair.encap(&good).unwrap();
    pair.decap(&w).unwrap();
    // Wrong destination port.
    let mut bad = good.clone();
    bad[22..24].copy_from_slice(&80u16.to_be_bytes());
    let w = pair.encap(&bad).unwrap();
    assert_eq!(pair.decap(&w), Err(DropReason::TsMismatch));
    // A non-first fragment has no ports: it does not match a port-specific selector.
    let mut frag = good.clone();
    frag[6..8].copy_from_slice(&0x0001u16.to_be_bytes());
    frag[10..12].copy_from_slice(&[0, 0]);
    let w = pair.encap(&frag).unwrap();
    assert_eq!(pair.decap(&w), Err(DropReason::TsMismatch));
}

#[test]
fn esn_sequence_crosses_the_32_bit_boundary() {
    for suite in SUITES {
        let s = Setup {
            esn: true,
            output: Output::Ip,
            encap: true,
            ..Setup::simple(suite)
        };
        let mut pair = Pair::new(s);
        let start = (1u64 << 32) - 3;
        assert!(pair.tx.set_last_seq_for_testing(pair.out, start));
        assert!(pair.rx.mark_received_for_testing(pair.inb, start));
        let inner = small_inner(&s);
        let mut wires = Vec::new();
        for k in 1..=6u64 {
            let w = pair.encap(&inner).unwrap();
            let (out, d) = pair.decap(&w).unwrap();
            assert_eq!(
                (out.as_slice(), d.seq),
                (inner.as_slice(), start + k),
                "{suite:?}"
            );
            wires.push(w);
        }
        // Out of order across the boundary still works; replays do not.
        assert_eq!(
            pair.decap(&wires[1]),
            Err(DropReason::Replayed { seq: start + 2 })
        );
        assert_eq!(pair.tx.stats(pair.out).unwrap().last_seq, start + 6);
    }
}

#[test]
fn non_esn_sequence_exhaustion() {
    let s = Setup::simple(Suite::Gcm128);
    let mut pair = Pair::new(s);
    let inner = small_inner(&s);
    let max = u64::from(u32::MAX);
    pair.tx
        .set_last_seq_for_testing(pair.out, max - SEQ_WARN_MARGIN - 2);
    pair.encap(&inner).unwrap();
    assert_eq!(pair.tx.poll_event(), None);
    pair.encap(&inner).unwrap(); // seq = max - margin: the warning
    assert_eq!(
        pair.tx.poll_event(),
        Some(EspEvent::SeqNearExhaustion {
            sa: pair.out,
            spi: Spi(SPI)
        })
    );
    pair.tx.set_last_seq_for_testing(pair.out, max - 1);
    pair.rx.mark_received_for_testing(pair.inb, max - 2);
    let w = pair.encap(&inner).unwrap(); // seq 2^32 - 1, the last one
    assert_eq!(pair.decap(&w).unwrap().1.seq, max);
    assert_eq!(
        pair.tx.poll_event(),
        Some(EspEvent::SeqExhausted {
            sa: pair.out,
            spi: Spi(SPI)
        })
    );
    assert_eq!(pair.encap(&inner), Err(EncapError::SeqExhausted));
    assert_eq!(pair.encap(&inner), Err(EncapError::SeqExhausted));
    assert_eq!(pair.tx.poll_event(), None, "raised once");
    assert_eq!(pair.tx.stats(pair.out).unwrap().encap_errors, 2);

    // With ESN the same counter just continues past 2^32 - 1.
    let s = Setup {
        esn: true,
        ..Setup::simple(Suite::Gcm128)
    };
    let mut pair = Pair::new(s);
    pair.tx.set_last_seq_for_testing(pair.out, max);
    pair.encap(&inner).unwrap();
    pair.tx.set_last_seq_for_testing(pair.out, u64::MAX - 1);
    pair.encap(&inner).unwrap();
    assert_eq!(pair.encap(&inner), Err(EncapError::SeqExhausted));
}

fn lifetimes(soft: LifetimeLimits, hard: LifetimeLimits) -> esp::Lifetime {
    esp::Lifetime { soft, hard }
}

#[test]
fn packet_and_byte_lifetimes_both_directions() {
    let inner_len = small_inner(&Setup::simple(Suite::Gcm128)).len() as u64;
    for kind in [LifetimeKind::Packets, LifetimeKind::Bytes] {
        let (soft, hard) = match kind {
            LifetimeKind::Packets => (
                LifetimeLimits {
                    packets: Some(3),
                    ..Default::default()
                },
                LifetimeLimits {
                    packets: Some(5),
                    ..Default::default()
                },
            ),
            _ => (
                LifetimeLimits {
                    bytes: Some(3 * inner_len),
                    ..Default::default()
                },
                LifetimeLimits {
                    bytes: Some(5 * inner_len - 1),
                    ..Default::default()
                },
            ),
        };
        let s = Setup::simple(Suite::Gcm128);
        let mut o = params(&s, Direction::Outbound);
        let mut i = params(&s, Direction::Inbound);
        o.lifetime = lifetimes(soft, hard);
        i.lifetime = lifetimes(soft, hard);
        let mut pair = Pair::with_params(s, o, i);
        let inner = small_inner(&s);
        let mut wires = Vec::new();
        for n in 1..=5 {
            wires.push(pair.encap(&inner).unwrap());
            pair.decap(wires.last().unwrap()).unwrap();
            let (tx_ev, rx_ev) = (pair.tx.poll_event(), pair.rx.poll_event());
            match n {
                3 => {
                    assert_eq!(
                        tx_ev,
                        Some(EspEvent::SoftLifetime {
                            sa: pair.out,
                            spi: Spi(SPI),
                            kind
                        })
                    );
                    assert_eq!(
                        rx_ev,
                        Some(EspEvent::SoftLifetime {
                            sa: pair.inb,
                            spi: Spi(SPI),
                            kind
                        })
                    );
                }
                5 => {
                    assert_eq!(
                        tx_ev,
                        Some(EspEvent::HardLifetime {
                            sa: pair.out,
                            spi: Spi(SPI),
                            kind
                        })
                    );
                    assert_eq!(
                        rx_ev,
                        Some(EspEvent::HardLifetime {
                            sa: pair.inb,
                            spi: Spi(SPI),
                            kind
                        })
                    );
                }
                _ => assert_eq!((tx_ev, rx_ev), (None, None), "packet {n}"),
            }
        }
        assert_eq!(pair.encap(&inner), Err(EncapError::HardLifetimeExpired));
        assert_eq!(pair.tx.is_expired(pair.out), Some(true));
        // The inbound SA refuses even a packet it never saw.
        let mut pair2_wire = wires[4].clone();
        pair2_wire[4..8].copy_from_slice(&6u32.to_be_bytes());
        assert_eq!(pair.decap(&pair2_wire), Err(DropReason::SaExpired));
        assert_eq!(pair.rx.stats(pair.inb).unwrap().drops.sa_expired, 1);
        assert_eq!((pair.tx.poll_event(), pair.rx.poll_event()), (None, None));
        // Still installed until removed.
        assert!(pair.rx.lookup_inbound(Spi(SPI)).is_some());
        assert!(pair.rx.remove(pair.inb));
        assert!(pair.rx.lookup_inbound(Spi(SPI)).is_none());
    }
}

#[test]
fn time_lifetimes_with_virtual_clock() {
    let s = Setup::simple(Suite::ChaCha);
    let soft = LifetimeLimits {
        time: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let hard = LifetimeLimits {
        time: Some(Duration::from_secs(20)),
        ..Default::default()
    };
    let mut o = params(&s, Direction::Outbound);
    let mut i = params(&s, Direction::Inbound);
    o.lifetime = lifetimes(soft, hard);
    i.lifetime = lifetimes(soft, hard);
    let mut pair = Pair::with_params(s, o, i);
    let inner = small_inner(&s);
    let at = |secs: u64| t0() + Duration::from_secs(secs);
    assert_eq!(pair.tx.poll_timeout(), Some(at(10)));
    let w = pair.encap_at(at(5), &inner).unwrap();
    pair.decap_at(at(5), &w).unwrap();
    pair.tx.handle_timeout(at(9));
    assert_eq!(pair.tx.poll_event(), None);
    pair.tx.handle_timeout(at(10));
    assert_eq!(
        pair.tx.poll_event(),
        Some(EspEvent::SoftLifetime {
            sa: pair.out,
            spi: Spi(SPI),
            kind: LifetimeKind::Time
        })
    );
    assert_eq!(pair.tx.poll_timeout(), Some(at(20)));
    // Traffic still flows between soft and hard.
    let w = pair.encap_at(at(15), &inner).unwrap();
    // The receiver never had handle_timeout called: the packet itself notices the time.
    pair.decap_at(at(15), &w).unwrap();
    assert_eq!(
        pair.rx.poll_event(),
        Some(EspEvent::SoftLifetime {
            sa: pair.inb,
            spi: Spi(SPI),
            kind: LifetimeKind::Time
        })
    );
    // After the hard limit: no more traffic, one event each.
    assert_eq!(
        pair.encap_at(at(21), &inner),
        Err(EncapError::HardLifetimeExpired)
    );
    assert_eq!(
        pair.tx.poll_event(),
        Some(EspEvent::HardLifetime {
            sa: pair.out,
            spi: Spi(SPI),
            kind: LifetimeKind::Time
        })
    );
    assert_eq!(pair.decap_at(at(21), &w), Err(DropReason::SaExpired));
    assert_eq!(
        pair.rx.poll_event(),
        Some(EspEvent::HardLifetime {
            sa: pair.inb,
            spi: Spi(SPI),
            kind: LifetimeKind::Time
        })
    );
    pair.tx.handle_timeout(at(30));
    assert_eq!(pair.tx.poll_event(), None);
    assert_eq!(pair.tx.poll_timeout(), None);
}

#[test]
fn install_errors_and_stale_handles() {
    let s = Setup::simple(Suite::Gcm128);
    let mut e = EspEngine::new(Arc::new(RustCrypto::new()));
    let a = e.install(t0(), params(&s, Direction::Inbound)).unwrap();
    assert_eq!(
        e.install(t0(), params(&s, Direction::Inbound)),
        Err(InstallError::DuplicateSpi(Spi(SPI)))
    );
    // The same SPI outbound is fine (the peer chose it).
    let out = e.install(t0(), params(&s, Direction::Outbound)).unwrap();
    let mut p = params(&s, Direction::Inbound);
    p.spi = Spi(255);
    assert_eq!(e.install(t0(), p), Err(InstallError::ReservedSpi(Spi(255))));
    let mut p = params(&s, Direction::Inbound);
    p.spi = Spi(0x999);
    p.remote_addr = ip("2001:db8::9");
    assert_eq!(e.install(t0(), p), Err(InstallError::AddressFamilyMismatch));
    let mut p = params(&s, Direction::Inbound);
    p.spi = Spi(0x998);
    p.transform = esp::EspTransform::Aead {
        alg: ipsec_core::crypto::AeadAlgorithm::Aes256Gcm,
        key: ipsec_core::SecretBytes::from_slice(&[0; 16]),
        salt: ipsec_core::SecretBytes::from_slice(&[0; 4]),
    };
    assert!(matches!(e.install(t0(), p), Err(InstallError::Crypto(_))));

    let mut buf = vec![0u8; 256];
    let pkt = small_inner(&s);
    buf[64..64 + pkt.len()].copy_from_slice(&pkt);
    assert_eq!(
        e.encapsulate(t0(), a, &mut buf, 64..64 + pkt.len()),
        Err(EncapError::NotOutbound)
    );
    assert!(e.remove(a));
    assert!(!e.remove(a));
    assert_eq!(e.stats(a), None);
    // Reinstall reuses the slot; the old id stays dead.
    let b = e.install(t0(), params(&s, Direction::Inbound)).unwrap();
    assert_ne!(a, b);
    assert_eq!(e.stats(a), None);
    assert!(e.stats(b).is_some());
    assert_eq!(e.lookup_inbound(Spi(SPI)), Some(b));
    assert_eq!(
        e.encapsulate(t0(), a, &mut buf, 64..64 + pkt.len()),
        Err(EncapError::UnknownSa)
    );
    // Buffers without head- or tailroom are refused without panicking.
    let head = e.headroom(out).unwrap();
    let tail = e.tailroom(out, pkt.len()).unwrap();
    let needed = head + pkt.len() + tail;
    assert_eq!(e.overhead(out, pkt.len()), Some(head + tail));
    let mut small = vec![0u8; needed - 1];
    small[head..head + pkt.len()].copy_from_slice(&pkt);
    assert_eq!(
        e.encapsulate(t0(), out, &mut small, head..head + pkt.len()),
        Err(EncapError::BufferTooSmall { needed })
    );
    let mut big = vec![0u8; needed + 10];
    assert_eq!(
        e.encapsulate(t0(), out, &mut big, head - 1..head - 1 + pkt.len()),
        Err(EncapError::BadInnerPacket),
        "zeros are not an IP packet"
    );
    big[head - 1..head - 1 + pkt.len()].copy_from_slice(&pkt);
    assert_eq!(
        e.encapsulate(t0(), out, &mut big, head - 1..head - 1 + pkt.len()),
        Err(EncapError::BufferTooSmall { needed })
    );
    assert_eq!(
        e.encapsulate(t0(), out, &mut big, head..needed + 11),
        Err(EncapError::BadRange)
    );
}

#[test]
fn decapsulate_ip_classifies_outer_packets() {
    let s = Setup {
        output: Output::Ip,
        encap: true,
        ..Setup::simple(Suite::Gcm128)
    };
    let mut pair = Pair::new(s);
    // IKE behind the non-ESP marker and NAT keepalives on port 4500 are not ESP.
    let (a, b) = outer_addrs(false);
    let ike = udp_packet(a, b, &[0, 0, 0, 0, 1, 2, 3, 4]);
    let keepalive = udp_packet(a, b, &[0xff]);
    for p in [ike, keepalive] {
        let mut buf = p.clone();
        assert_eq!(
            pair.rx.decapsulate_ip(t0(), &mut buf),
            Err(DropReason::NotEsp)
        );
    }
    assert_eq!(pair.rx.engine_stats().not_esp, 2);
    // Transport and tunnel agree on what is inside.
    let w = pair.encap(&small_inner(&s)).unwrap();
    let mut trailing = w.clone();
    trailing.extend_from_slice(&[0xee; 6]); // link-layer padding after the IP packet
    pair.decap(&trailing).unwrap();
}

/// The outer packet's ESP form (in UDP or bare) must be the SA's (RFC 3948 §3).
#[test]
fn decapsulate_ip_refuses_the_other_encapsulation() {
    for encap in [true, false] {
        let s = Setup {
            output: Output::Ip,
            encap,
            ..Setup::simple(Suite::Gcm128)
        };
        let mut pair = Pair::new(s);
        let w = pair.encap(&small_inner(&s)).unwrap();
        // The same ESP bytes in the other form: UDP header removed or added, IPv4 header
        // fixed up (protocol, length, checksum).
        let esp = if encap {
            w[28..].to_vec()
        } else {
            w[20..].to_vec()
        };
        let mut other = w[..20].to_vec();
        if !encap {
            other.extend_from_slice(&[0x11, 0x94, 0x11, 0x94, 0, 0, 0, 0]);
            let l = (8 + esp.len()) as u16;
            other[24..26].copy_from_slice(&l.to_be_bytes());
        }
        other.extend_from_slice(&esp);
        other[9] = if encap { 50 } else { 17 };
        let total = other.len() as u16;
        other[2..4].copy_from_slice(&total.to_be_bytes());
        other[10..12].fill(0);
        let sum = other[..20]
            .chunks_exact(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        other[10..12].copy_from_slice(&(!((sum & 0xffff) + (sum >> 16)) as u16).to_be_bytes());
        assert_eq!(
            pair.decap(&other).unwrap_err(),
            DropReason::EncapMismatch,
            "encap {encap}"
        );
        // The genuine form still passes (the refusal moved no replay window).
        pair.decap(&w).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Arbitrary bytes never panic and never pass, whatever the entry point.
    #[test]
    fn garbage_is_dropped_without_panicking(
        mut bytes in prop::collection::vec(any::<u8>(), 0..300),
        known_spi in any::<bool>(),
        first in prop::sample::select(vec![0x45u8, 0x46, 0x60, 0x00, 0xc0]),
    ) {
        for mode in [Mode::Tunnel, Mode::Transport] {
            let s = Setup { mode, ..Setup::simple(Suite::CbcSha256) };
            let mut pair = Pair::new(s);
            if known_spi && bytes.len() >= 4 {
                bytes[..4].copy_from_slice(&SPI.to_be_bytes());
            }
            let mut b = bytes.clone();
            prop_assert!(pair.rx.decapsulate(t0(), &mut b).is_err());
            let mut b = bytes.clone();
            if let Some(x) = b.first_mut() { *x = first; }
            prop_assert!(pair.rx.decapsulate_ip(t0(), &mut b).is_err());
        }
    }
}

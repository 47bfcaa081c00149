//! The RustCrypto and aws-lc providers must put the same bytes on the wire: the same
//! outbound SA installed in one engine per provider turns the same inner packets into
//! byte-identical ESP packets, and each provider's inbound SA accepts the other's packets.
//!
//! Only built with `--features aws-lc`.
#![cfg(feature = "aws-lc")]

mod common;

use std::sync::Arc;

use common::*;
use esp::{Direction, EspConfig, EspEngine, Mode, Output, SaId};
use ipsec_core::{AwsLc, CryptoProvider, RustCrypto, Spi};

struct Side<P: CryptoProvider> {
    tx: EspEngine<P>,
    rx: EspEngine<P>,
    out: SaId,
}

impl<P: CryptoProvider> Side<P> {
    fn new(provider: P, s: &Setup) -> Self {
        let provider = Arc::new(provider);
        let mut tx = EspEngine::with_config(provider.clone(), EspConfig::with_output(s.output));
        let mut rx = EspEngine::new(provider);
        let out = tx.install(t0(), params(s, Direction::Outbound)).unwrap();
        rx.install(t0(), params(s, Direction::Inbound)).unwrap();
        Self { tx, rx, out }
    }

    fn encap(&mut self, pkt: &[u8]) -> Vec<u8> {
        let head = self.tx.headroom(self.out).unwrap();
        let tail = self.tx.tailroom(self.out, pkt.len()).unwrap();
        let mut buf = vec![0u8; head + pkt.len() + tail];
        buf[head..head + pkt.len()].copy_from_slice(pkt);
        let r = self
            .tx
            .encapsulate(t0(), self.out, &mut buf, head..head + pkt.len())
            .unwrap();
        buf[r].to_vec()
    }

    fn decap(&mut self, wire: &[u8], output: Output) -> Vec<u8> {
        let mut buf = wire.to_vec();
        let d = match output {
            Output::Ip => self.rx.decapsulate_ip(t0(), &mut buf),
            Output::Esp => self.rx.decapsulate(t0(), &mut buf),
        }
        .unwrap_or_else(|e| panic!("decapsulation failed: {e:?}"));
        buf[d.range].to_vec()
    }
}

/// Moves the receiver's window to `seq`, as if that packet had arrived.
fn mark_received<P: CryptoProvider>(rx: &mut EspEngine<P>, seq: u64) {
    let sa = rx.lookup_inbound(Spi(SPI)).unwrap();
    assert!(rx.mark_received_for_testing(sa, seq));
}

fn setups() -> Vec<Setup> {
    let mut v = Vec::new();
    for suite in [Suite::Gcm128, Suite::Gcm256, Suite::ChaCha] {
        for esn in [false, true] {
            for encap in [false, true] {
                for (inner_v6, outer_v6) in [(false, false), (true, true), (false, true)] {
                    for output in [Output::Esp, Output::Ip] {
                        v.push(Setup {
                            suite,
                            mode: Mode::Tunnel,
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
    v
}

#[test]
fn aead_esp_packets_identical_across_providers() {
    let mut compared = 0;
    for s in setups() {
        let mut rc = Side::new(RustCrypto::with_seed(7), &s);
        let mut aws = Side::new(AwsLc::with_seed(7), &s);
        // With ESN, jump close to 2^32 so that the high half of the sequence number (in
        // the AAD only) is exercised too.
        if s.esn {
            let last = (1u64 << 32) - 3;
            assert!(rc.tx.set_last_seq_for_testing(rc.out, last));
            assert!(aws.tx.set_last_seq_for_testing(aws.out, last));
            mark_received(&mut rc.rx, last);
            mark_received(&mut aws.rx, last);
        }
        for (i, len) in [0usize, 1, 2, 3, 17, 100, 511, 1372]
            .into_iter()
            .enumerate()
        {
            let payload: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
            let pkt = inner_packet(&s, &payload);
            let a = rc.encap(&pkt);
            let b = aws.encap(&pkt);
            assert_eq!(a, b, "{s:?}, {len}-octet payload: providers differ");
            if s.output == Output::Ip {
                judge_outer(&a, s.encap);
            }
            assert_eq!(
                aws.decap(&a, s.output),
                pkt,
                "{s:?}: aws-lc opens RustCrypto's"
            );
            assert_eq!(
                rc.decap(&b, s.output),
                pkt,
                "{s:?}: RustCrypto opens aws-lc's"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 3 * 2 * 2 * 3 * 2 * 8);
}

//! SK and SKF protection: the RFC 7634 Appendix B known answer, round trips for every
//! transform, tampering, and fragment reassembly.

use ipsec_core::crypto::AeadAlgorithm;
use ipsec_core::{RustCrypto, SecretBytes};

use super::*;

fn cipher(t: SkTransform, seed: u8) -> SkCipher<RustCrypto> {
    let e: Vec<u8> = (0..t.encr_key_len()).map(|i| i as u8 ^ seed).collect();
    let a: Vec<u8> = (0..t.integ_key_len())
        .map(|i| (i as u8).wrapping_mul(3) ^ seed)
        .collect();
    SkCipher::new(
        &RustCrypto::new(),
        t,
        &SecretBytes::new(e),
        &SecretBytes::new(a),
    )
    .unwrap()
}

fn all_transforms() -> Vec<SkTransform> {
    vec![
        SkTransform::Aead(AeadAlgorithm::Aes128Gcm),
        SkTransform::Aead(AeadAlgorithm::Aes256Gcm),
        SkTransform::Aead(AeadAlgorithm::ChaCha20Poly1305),
        SkTransform::AesCbc {
            key_bits: 128,
            integ: IntegId::HMAC_SHA2_256_128,
        },
        SkTransform::AesCbc {
            key_bits: 256,
            integ: IntegId::HMAC_SHA2_256_128,
        },
        SkTransform::AesCbc {
            key_bits: 192,
            integ: IntegId::HMAC_SHA2_384_192,
        },
        SkTransform::AesCbc {
            key_bits: 256,
            integ: IntegId::HMAC_SHA2_512_256,
        },
    ]
}

/// RFC 7634 Appendix B: an INFORMATIONAL request carrying SET_WINDOW_SIZE(10), protected
/// with ChaCha20-Poly1305 (key 80..9f, salt a0a1a2a3, IV 1011121314151617).
#[test]
fn rfc7634_appendix_b_known_answer() {
    let expected = hex(
        "c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e202500 00000009 00000045
         29000029 1011121314151617 6103947 01f8d017f7c129248896b71bf
         e25236efd7cdc670669063 15b2",
    );
    let t = SkTransform::from_negotiated(EncrId::CHACHA20_POLY1305, None, None).unwrap();
    let sk_e = SecretBytes::new((0x80..=0xa3).collect());
    let mut c = SkCipher::new(&RustCrypto::new(), t, &sk_e, &SecretBytes::default()).unwrap();
    c.set_iv_counter(0x1011121314151617).unwrap();
    assert!(
        c.set_iv_counter(1).is_err(),
        "the IV counter never moves backwards"
    );
    let header = IkeHeader::new(
        IkeSpi(hex("c0c1c2c3c4c5c6c7").try_into().unwrap()),
        IkeSpi(hex("d0d1d2d3d4d5d6d7").try_into().unwrap()),
        ExchangeType::INFORMATIONAL,
        Flags(0),
        9,
    );
    let inner = vec![Payload::Notify(NotifyPayload::set_window_size(10))];
    let sealed = c.seal_to_vec(&header, &inner).unwrap();
    assert_eq!(sealed, expected);

    let opened = c.open(&expected).unwrap();
    assert_eq!(opened.payloads, inner);
    assert!(opened.clear.is_empty());
    assert_eq!(opened.header.message_id, 9);
    // The outer view: one SK payload whose Next Payload is N.
    let m = Message::decode(&expected).unwrap();
    assert_eq!(m.sk().unwrap().first_payload, PayloadType::N);
}

#[test]
fn round_trip_every_transform() {
    let h = hdr(ExchangeType::IKE_AUTH, true, false, 1);
    for t in all_transforms() {
        let mut tx = cipher(t, 7);
        let rx = cipher(t, 7);
        for inner in [ike_auth_inner(), informational_inner(), vec![]] {
            let bytes = tx.seal_to_vec(&h, &inner).unwrap();
            let m = Message::decode(&bytes).unwrap();
            assert_eq!(m.header.next_payload, PayloadType::SK);
            assert_eq!(m.header.length as usize, bytes.len());
            let sk = m.sk().unwrap();
            let mut plain = Vec::new();
            encode_chain(&inner, &mut plain).unwrap();
            assert_eq!(
                sk.data.len(),
                plain.len() + t.overhead(plain.len()),
                "{t:?}"
            );
            if let SkTransform::AesCbc { .. } = t {
                assert_eq!((sk.data.len() - t.iv_len() - t.icv_len()) % 16, 0);
            }
            let opened = rx.open(&bytes).unwrap();
            assert_eq!(opened.payloads, inner, "{t:?}");
        }
    }
}

#[test]
fn ivs_are_unique_and_counter_based() {
    let h = hdr(ExchangeType::INFORMATIONAL, true, false, 2);
    for t in all_transforms() {
        let mut c = cipher(t, 1);
        let a = c.seal_to_vec(&h, &informational_inner()).unwrap();
        let b = c.seal_to_vec(&h, &informational_inner()).unwrap();
        let iv = |m: &[u8]| m[32..32 + t.iv_len()].to_vec();
        assert_ne!(iv(&a), iv(&b), "{t:?}");
        assert_ne!(a, b);
        if let SkTransform::Aead(_) = t {
            assert_eq!(iv(&a), 0u64.to_be_bytes());
            assert_eq!(iv(&b), 1u64.to_be_bytes());
        }
    }
}

#[test]
fn every_tampered_octet_is_rejected_before_parsing() {
    let h = hdr(ExchangeType::INFORMATIONAL, false, true, 3);
    for t in all_transforms() {
        let mut tx = cipher(t, 9);
        let rx = cipher(t, 9);
        let bytes = tx.seal_to_vec(&h, &informational_inner()).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            match rx.open(&b) {
                Err(SkError::AuthenticationFailed) => {}
                // Octets the outer decoder checks before integrity: the first payload type
                // and the length fields.
                Err(SkError::Decode(_)) => {
                    assert!(matches!(i, 16 | 24..=27 | 30..=31), "{t:?} octet {i}")
                }
                // Next Payload of the header changed from SK to CP.
                Err(SkError::NoEncryptedPayload) => assert_eq!(i, 16),
                other => panic!("{t:?} octet {i}: {other:?}"),
            }
        }
        // Truncations.
        for n in 0..bytes.len() {
            let mut b = bytes[..n].to_vec();
            if n >= 28 {
                b[24..28].copy_from_slice(&(n as u32).to_be_bytes());
            }
            assert!(rx.open(&b).is_err());
        }
        // A different key.
        assert_eq!(
            cipher(t, 10).open(&bytes),
            Err(SkError::AuthenticationFailed)
        );
    }
}

#[test]
fn authenticated_but_malformed_inner_is_inner_error() {
    let h = hdr(ExchangeType::INFORMATIONAL, true, false, 4);
    let mut tx = cipher(SkTransform::Aead(AeadAlgorithm::Aes256Gcm), 3);
    let rx = cipher(SkTransform::Aead(AeadAlgorithm::Aes256Gcm), 3);
    let inner = vec![Payload::Unknown(UnknownPayload {
        ty: PayloadType(52),
        critical: true,
        data: vec![1, 2, 3],
    })];
    let bytes = tx.seal_to_vec(&h, &inner).unwrap();
    match rx.open(&bytes) {
        Err(SkError::Inner(e)) => {
            assert_eq!(
                e.kind,
                DecodeErrorKind::UnsupportedCriticalPayload {
                    payload_type: PayloadType(52)
                }
            );
            // Offset of the inner payload within the message: header, SK header, IV.
            assert_eq!(e.offset, 28 + 4 + 8);
        }
        other => panic!("{other:?}"),
    }
    // SK inside SK is refused by the sealer.
    let nested = vec![Payload::Sk(SkPayload {
        first_payload: PayloadType::NONE,
        data: vec![],
    })];
    assert_eq!(tx.seal_to_vec(&h, &nested), Err(SkError::NestedEncrypted));
}

#[test]
fn key_lengths_and_transform_mapping() {
    assert_eq!(
        SkTransform::from_negotiated(EncrId::AES_GCM_16, Some(256), Some(IntegId::NONE)),
        Some(SkTransform::Aead(AeadAlgorithm::Aes256Gcm))
    );
    assert_eq!(
        SkTransform::from_negotiated(
            EncrId::AES_GCM_16,
            Some(256),
            Some(IntegId::HMAC_SHA2_256_128)
        ),
        None
    );
    assert_eq!(
        SkTransform::from_negotiated(EncrId::AES_CBC, Some(128), Some(IntegId::HMAC_SHA2_256_128)),
        Some(SkTransform::AesCbc {
            key_bits: 128,
            integ: IntegId::HMAC_SHA2_256_128
        })
    );
    assert_eq!(
        SkTransform::from_negotiated(EncrId::AES_CBC, Some(128), None),
        None
    );
    assert_eq!(
        SkTransform::from_negotiated(EncrId::AES_CBC, Some(64), Some(IntegId::HMAC_SHA2_256_128)),
        None
    );
    let t = SkTransform::Aead(AeadAlgorithm::Aes128Gcm);
    assert_eq!(t.encr_key_len(), 20);
    let e = SkCipher::new(
        &RustCrypto::new(),
        t,
        &SecretBytes::zeroed(16),
        &SecretBytes::default(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        SkError::KeyLength {
            what: "SK_e",
            expected: 20,
            actual: 16
        }
    );
}

fn big_inner() -> Vec<Payload> {
    let mut v = ike_auth_inner();
    v.push(Payload::Cert(CertPayload {
        encoding: CertEncoding::X509_SIGNATURE,
        data: (0..3000u32).map(|i| (i * 7) as u8).collect(),
    }));
    v
}

#[test]
fn fragments_round_trip_in_any_order() {
    let h = hdr(ExchangeType::IKE_AUTH, true, false, 1);
    for t in all_transforms() {
        let mut tx = cipher(t, 5);
        let rx = cipher(t, 5);
        let frags = tx.seal_fragments(&h, &big_inner(), 576).unwrap();
        assert!(frags.len() > 5, "{t:?}");
        for (i, f) in frags.iter().enumerate() {
            assert!(
                f.len() <= 576,
                "{t:?} fragment {} is {} octets",
                i + 1,
                f.len()
            );
            let m = Message::decode(f).unwrap();
            let skf = m.skf().unwrap();
            assert_eq!(usize::from(skf.fragment_number), i + 1);
            assert_eq!(usize::from(skf.total_fragments), frags.len());
            assert_eq!(m.header.next_payload, PayloadType::SKF);
            assert_eq!(
                skf.first_payload,
                if i == 0 {
                    PayloadType::IDI
                } else {
                    PayloadType::NONE
                }
            );
        }
        // Reverse order with duplicates, before and after completion.
        let mut r = FragmentReassembler::default();
        let mut done = None;
        for f in frags
            .iter()
            .rev()
            .take(1)
            .chain(frags.iter().rev())
            .chain(frags.first())
        {
            let frag = rx.open_fragment(f).unwrap();
            if let Some(m) = r.push(frag).unwrap() {
                assert!(done.is_none());
                done = Some(m);
            }
        }
        let m = done.expect("reassembled");
        assert_eq!(m.payloads, big_inner(), "{t:?}");
        assert_eq!(m.header.message_id, 1);
        // A single fragment when everything fits.
        let h2 = hdr(ExchangeType::IKE_AUTH, true, false, 2);
        let one = tx
            .seal_fragments(&h2, &informational_inner(), 1280)
            .unwrap();
        assert_eq!(one.len(), 1);
        let m = r.push(rx.open_fragment(&one[0]).unwrap()).unwrap().unwrap();
        assert_eq!(m.payloads, informational_inner());
    }
}

#[test]
fn tampered_fragments_are_never_stored() {
    let h = hdr(ExchangeType::IKE_AUTH, true, false, 1);
    let t = SkTransform::Aead(AeadAlgorithm::ChaCha20Poly1305);
    let mut tx = cipher(t, 5);
    let rx = cipher(t, 5);
    let frags = tx.seal_fragments(&h, &big_inner(), 1000).unwrap();
    let mut bad = frags[1].clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    assert_eq!(rx.open_fragment(&bad), Err(SkError::AuthenticationFailed));
    // open_fragment refuses SK messages and vice versa.
    let sk = tx.seal_to_vec(&h, &informational_inner()).unwrap();
    assert_eq!(rx.open_fragment(&sk), Err(SkError::NoEncryptedPayload));
    assert_eq!(rx.open(&frags[0]), Err(SkError::NoEncryptedPayload));
}

#[test]
fn reassembly_rules_and_limits() {
    let h = hdr(ExchangeType::IKE_AUTH, true, false, 1);
    let t = SkTransform::Aead(AeadAlgorithm::Aes128Gcm);
    let mut tx = cipher(t, 5);
    let rx = cipher(t, 5);
    let small = tx.seal_fragments(&h, &big_inner(), 600).unwrap();
    let smaller = tx.seal_fragments(&h, &big_inner(), 400).unwrap();
    assert!(smaller.len() > small.len());

    // Re-fragmented retransmission with more fragments restarts; fewer are discarded.
    let mut r = FragmentReassembler::default();
    assert_eq!(r.push(rx.open_fragment(&small[0]).unwrap()), Ok(None));
    for f in &smaller[..smaller.len() - 1] {
        assert_eq!(r.push(rx.open_fragment(f).unwrap()), Ok(None));
    }
    for f in &small {
        assert_eq!(r.push(rx.open_fragment(f).unwrap()), Ok(None));
    }
    let m = r
        .push(rx.open_fragment(smaller.last().unwrap()).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(m.payloads, big_inner());

    // Late duplicates of the completed message are ignored.
    assert_eq!(r.push(rx.open_fragment(&small[0]).unwrap()), Ok(None));
    assert_eq!(r.message_id(), None);

    // A new message ID restarts.
    let h2 = hdr(ExchangeType::IKE_AUTH, true, false, 2);
    let other = tx.seal_fragments(&h2, &big_inner(), 600).unwrap();
    let mut r = FragmentReassembler::default();
    r.push(rx.open_fragment(&small[0]).unwrap()).unwrap();
    assert_eq!(r.message_id(), Some(1));
    r.push(rx.open_fragment(&other[0]).unwrap()).unwrap();
    assert_eq!(r.message_id(), Some(2));

    // Limits.
    let mut r = FragmentReassembler::new(ReassemblyLimits {
        max_fragments: 4,
        max_bytes: 100_000,
    });
    assert!(matches!(
        r.push(rx.open_fragment(&small[0]).unwrap()),
        Err(ReassemblyError::TooManyFragments { .. })
    ));
    let mut r = FragmentReassembler::new(ReassemblyLimits {
        max_fragments: 64,
        max_bytes: 1000,
    });
    let mut err = None;
    for f in &small {
        if let Err(e) = r.push(rx.open_fragment(f).unwrap()) {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(
        err,
        Some(ReassemblyError::TooLarge { max: 1000, .. })
    ));
    assert_eq!(r.message_id(), None);

    // Too small a datagram.
    assert_eq!(
        tx.seal_fragments(&h, &big_inner(), 60),
        Err(SkError::MtuTooSmall(60))
    );
}

#[test]
fn seal_datagrams_fragments_only_when_needed() {
    let h = hdr(ExchangeType::IKE_AUTH, true, false, 1);
    let t = SkTransform::AesCbc {
        key_bits: 128,
        integ: IntegId::HMAC_SHA2_256_128,
    };
    let mut tx = cipher(t, 2);
    let rx = cipher(t, 2);
    let one = tx
        .seal_datagrams(&h, &informational_inner(), Some(1280))
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(rx.open(&one[0]).unwrap().payloads, informational_inner());
    let big = tx.seal_datagrams(&h, &big_inner(), None).unwrap();
    assert_eq!(big.len(), 1);
    assert!(big[0].len() > 1280);
    let frags = tx.seal_datagrams(&h, &big_inner(), Some(1280)).unwrap();
    assert!(frags.len() > 1 && frags.iter().all(|f| f.len() <= 1280));
    let mut r = FragmentReassembler::default();
    let mut out = None;
    for f in &frags {
        out = r.push(rx.open_fragment(f).unwrap()).unwrap();
    }
    assert_eq!(out.unwrap().payloads, big_inner());
}

#[test]
fn requests_and_responses_with_one_message_id_are_reassembled_apart() {
    // The peer's response #1 and its later request #1 come under the same key.
    let t = SkTransform::Aead(AeadAlgorithm::Aes256Gcm);
    let mut tx = cipher(t, 5);
    let rx = cipher(t, 5);
    let resp = tx
        .seal_fragments(
            &hdr(ExchangeType::IKE_AUTH, false, true, 1),
            &big_inner(),
            700,
        )
        .unwrap();
    let req = tx
        .seal_fragments(
            &hdr(ExchangeType::CREATE_CHILD_SA, false, false, 1),
            &big_inner(),
            700,
        )
        .unwrap();
    let mut r = FragmentReassembler::default();
    let mut done = Vec::new();
    for f in &resp {
        if let Some(m) = r.push(rx.open_fragment(f).unwrap()).unwrap() {
            done.push(m);
        }
    }
    // A replayed response fragment in the middle of the request cannot be spliced in.
    for (i, f) in req.iter().enumerate() {
        if i == 2 {
            assert!(
                r.push(rx.open_fragment(&resp[2]).unwrap())
                    .unwrap()
                    .is_none()
            );
        }
        if let Some(m) = r.push(rx.open_fragment(f).unwrap()).unwrap() {
            done.push(m);
        }
    }
    assert_eq!(
        done.len(),
        2,
        "the replay neither spliced nor disturbed the request"
    );
    assert!(done[0].header.flags.response());
    assert_eq!(done[1].header.exchange_type, ExchangeType::CREATE_CHILD_SA);
    assert!(!done[1].header.flags.response());
    assert_eq!(done[1].payloads, big_inner());
}

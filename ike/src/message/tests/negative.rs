//! Malformed input: every rejection says what, where and in which payload.

use super::*;

fn decode_err(bytes: &[u8]) -> DecodeError {
    Message::decode(bytes).expect_err("must be rejected")
}

/// Header with given first payload and body, length field set to the total.
fn raw(first: u8, body: &[u8]) -> Vec<u8> {
    let h = hdr(ExchangeType::INFORMATIONAL, true, false, 1);
    let mut v = Vec::new();
    h.write(PayloadType(first), (28 + body.len()) as u32, &mut v);
    v.extend_from_slice(body);
    v
}

fn generic(next: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![next, flags];
    v.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn truncated_at_every_length() {
    let bytes = sa_init_request().to_bytes().unwrap();
    for n in 0..bytes.len() {
        let e = decode_err(&bytes[..n]);
        if n < 28 {
            assert!(
                matches!(e.kind, DecodeErrorKind::Truncated { .. }),
                "{n}: {e}"
            );
        } else {
            assert!(
                matches!(e.kind, DecodeErrorKind::LengthMismatch { .. }),
                "{n}: {e}"
            );
        }
    }
}

#[test]
fn length_mismatch_with_datagram() {
    let mut bytes = sa_init_request().to_bytes().unwrap();
    let len = bytes.len();
    bytes.push(0);
    let e = decode_err(&bytes);
    assert_eq!(
        e.kind,
        DecodeErrorKind::LengthMismatch {
            declared: len,
            actual: len + 1
        }
    );
    assert_eq!(e.offset, 24);
    assert_eq!(e.payload, None);
    assert!(e.to_string().contains("IKE header"), "{e}");
}

#[test]
fn bad_payload_lengths() {
    // Length below the generic header.
    let mut b = generic(0, 0, &[]);
    b[3] = 3;
    let e = decode_err(&raw(PayloadType::V.0, &b));
    assert!(
        matches!(e.kind, DecodeErrorKind::BadLength { length: 3, .. }),
        "{e}"
    );
    assert_eq!(e.payload, Some(PayloadType::V));
    assert_eq!(e.offset, 30);
    // Length beyond the message.
    let mut b = generic(0, 0, &[1, 2, 3]);
    b[3] = 200;
    let e = decode_err(&raw(PayloadType::V.0, &b));
    assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }), "{e}");
    // Below a payload's minimum (KE needs 4 body octets).
    let e = decode_err(&raw(PayloadType::KE.0, &generic(0, 0, &[0, 31])));
    assert!(
        matches!(e.kind, DecodeErrorKind::BadLength { min: 8, .. }),
        "{e}"
    );
    assert_eq!(e.payload, Some(PayloadType::KE));
    // Nonce outside 16..=256.
    let e = decode_err(&raw(PayloadType::NONCE.0, &generic(0, 0, &[7; 15])));
    assert!(matches!(e.kind, DecodeErrorKind::BadLength { .. }), "{e}");
    let e = decode_err(&raw(PayloadType::NONCE.0, &generic(0, 0, &[7; 257])));
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::InvalidValue {
                what: "nonce length",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn trailing_data_after_last_payload() {
    let mut body = generic(0, 0, b"vid");
    body.extend_from_slice(&[0, 0, 0, 0]);
    let e = decode_err(&raw(PayloadType::V.0, &body));
    assert!(
        matches!(e.kind, DecodeErrorKind::TrailingData { len: 4, .. }),
        "{e}"
    );
}

#[test]
fn chain_announcing_more_payloads_than_present() {
    let e = decode_err(&raw(
        PayloadType::V.0,
        &generic(PayloadType::N.0, 0, b"vid"),
    ));
    assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }), "{e}");
    assert_eq!(e.payload, Some(PayloadType::N));
    assert_eq!(e.offset, 35);
}

#[test]
fn versions() {
    let mut bytes = sa_init_request().to_bytes().unwrap();
    bytes[17] = 0x30;
    let e = decode_err(&bytes);
    assert_eq!(
        e.kind,
        DecodeErrorKind::HigherMajorVersion { major: 3, minor: 0 }
    );
    assert_eq!(e.offset, 17);
    assert_eq!(
        e.notify(),
        Some((NotifyType::INVALID_MAJOR_VERSION, vec![]))
    );
    bytes[17] = 0x10;
    let e = decode_err(&bytes);
    assert_eq!(
        e.kind,
        DecodeErrorKind::UnsupportedVersion { major: 1, minor: 0 }
    );
    assert_eq!(e.notify(), None);
    // A minor version is ignored (kept).
    bytes[17] = 0x21;
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(m.header.minor_version, 1);
    assert_eq!(m.payloads, sa_init_request().payloads);
}

#[test]
fn flags_kept_verbatim_and_reserved_bits_ignored() {
    let orig = sa_init_request();
    let mut bytes = orig.to_bytes().unwrap();
    // X bits of the flags octet: ignored, kept.
    bytes[19] |= 0x07 | 0x40 | 0x80 | Flags::VERSION;
    let m = Message::decode(&bytes).unwrap();
    assert!(m.header.flags.initiator() && m.header.flags.version() && !m.header.flags.response());
    assert_eq!(m.to_bytes().unwrap(), bytes);
    // RESERVED bits of the generic header and the critical bit of a known payload (§3.2:
    // "MUST be ignored on receipt"), and the KE RESERVED field.
    let mut bytes = orig.to_bytes().unwrap();
    let sa_len = usize::from(u16::from_be_bytes([bytes[30], bytes[31]]));
    let ke = 28 + sa_len;
    bytes[29] = 0xff; // SA: critical + reserved
    bytes[ke + 1] = 0x7f; // KE: reserved bits
    bytes[ke + 6] = 0xaa; // KE RESERVED field
    bytes[ke + 7] = 0x55;
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(m.payloads, orig.payloads);
    // Re-encoding canonicalises to zero.
    assert_eq!(m.to_bytes().unwrap(), orig.to_bytes().unwrap());
}

#[test]
fn unknown_critical_payload_rejected_with_type() {
    let body = generic(0, 0x80, b"whatever");
    let e = decode_err(&raw(49, &body));
    assert_eq!(
        e.kind,
        DecodeErrorKind::UnsupportedCriticalPayload {
            payload_type: PayloadType(49)
        }
    );
    assert_eq!(e.payload, Some(PayloadType(49)));
    assert_eq!(e.offset, 28);
    assert_eq!(
        e.notify(),
        Some((NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![49]))
    );
    assert!(e.to_string().contains("critical"), "{e}");
}

#[test]
fn unknown_non_critical_payload_skipped_and_kept() {
    let mut body = generic(PayloadType::NONCE.0, 0, b"future");
    body.extend(generic(0, 0, &[9; 16]));
    let bytes = raw(50, &body);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(
        m.payloads,
        vec![
            Payload::Unknown(UnknownPayload {
                ty: PayloadType(50),
                critical: false,
                data: b"future".to_vec()
            }),
            Payload::Nonce(vec![9; 16])
        ]
    );
    assert_eq!(m.to_bytes().unwrap(), bytes);
}

#[test]
fn encrypted_payload_must_be_last() {
    // SK followed by a Vendor ID: the SK's Next Payload is the inner type, so the octets
    // after it are not part of any chain.
    let mut body = generic(PayloadType::IDI.0, 0, &[0; 40]);
    body.extend(generic(0, 0, b"vid"));
    let e = decode_err(&raw(PayloadType::SK.0, &body));
    assert_eq!(e.kind, DecodeErrorKind::EncryptedNotLast);
    assert_eq!(e.payload, Some(PayloadType::SK));
    // Two SK payloads.
    let mut body = generic(PayloadType::IDI.0, 0, &[0; 40]);
    body.extend(generic(PayloadType::IDI.0, 0, &[0; 40]));
    let e = decode_err(&raw(PayloadType::SK.0, &body));
    assert_eq!(e.kind, DecodeErrorKind::EncryptedNotLast);
    // SK then SKF.
    let mut body = generic(PayloadType::IDI.0, 0, &[0; 40]);
    body.extend(generic(0, 0, &[0, 1, 0, 1, 9, 9]));
    let e = decode_err(&raw(PayloadType::SK.0, &body));
    assert_eq!(e.kind, DecodeErrorKind::EncryptedNotLast);
    // A clear payload before SK is fine.
    let mut body = generic(PayloadType::SK.0, 0, b"vid");
    body.extend(generic(PayloadType::IDI.0, 0, &[0; 40]));
    let m = Message::decode(&raw(PayloadType::V.0, &body)).unwrap();
    assert_eq!(m.sk().unwrap().first_payload, PayloadType::IDI);
    // The encoder refuses SK anywhere but last.
    let m = Message {
        header: hdr(ExchangeType::IKE_AUTH, true, false, 1),
        payloads: vec![
            Payload::Sk(SkPayload {
                first_payload: PayloadType::IDI,
                data: vec![0; 40],
            }),
            Payload::VendorId(vec![1]),
        ],
    };
    assert_eq!(m.to_bytes(), Err(EncodeError::EncryptedNotLast));
}

#[test]
fn nested_encrypted_payload_rejected() {
    let body = generic(0, 0, &[0; 40]);
    let mut r = codec::Reader::new(&body, 100, None);
    let e = decode_chain(&mut r, PayloadType::SK, false).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::NestedEncrypted);
    assert_eq!(e.offset, 100);
}

#[test]
fn skf_fragment_numbers() {
    for (num, total) in [(0u16, 1u16), (2, 1), (1, 0)] {
        let mut b = num.to_be_bytes().to_vec();
        b.extend_from_slice(&total.to_be_bytes());
        b.extend_from_slice(&[0; 30]);
        let e = decode_err(&raw(PayloadType::SKF.0, &generic(0, 0, &b)));
        assert!(
            matches!(
                e.kind,
                DecodeErrorKind::InvalidValue {
                    what: "fragment number",
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn sa_structure_errors() {
    let good = Message::new(
        hdr(ExchangeType::IKE_SA_INIT, true, false, 0),
        vec![Payload::Sa(SaPayload::new(vec![
            ike_proposal(),
            ike_cbc_proposal(),
        ]))],
    )
    .unwrap()
    .to_bytes()
    .unwrap();
    assert!(Message::decode(&good).is_ok());
    // Proposal 1 "last substruc" says last although another follows.
    let mut b = good.clone();
    b[32] = 0;
    let e = decode_err(&b);
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::InvalidValue {
                what: "proposal Last Substruc",
                value: 0
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset, 32);
    assert_eq!(e.payload, Some(PayloadType::SA));
    // Number of Transforms wrong.
    let mut b = good.clone();
    b[39] = 5;
    let e = decode_err(&b);
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::CountMismatch {
                declared: 5,
                actual: 6,
                ..
            }
        ),
        "{e}"
    );
    // Transform Last Substruc wrong.
    let mut b = good.clone();
    b[40] = 0;
    let e = decode_err(&b);
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::InvalidValue {
                what: "transform Last Substruc",
                ..
            }
        ),
        "{e}"
    );
    // Proposal length below 8.
    let mut b = good.clone();
    b[34..36].copy_from_slice(&7u16.to_be_bytes());
    let e = decode_err(&b);
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::BadLength {
                length: 7,
                min: 8,
                ..
            }
        ),
        "{e}"
    );
    // Transform length below 8.
    let mut b = good.clone();
    b[42..44].copy_from_slice(&4u16.to_be_bytes());
    let e = decode_err(&b);
    assert!(
        matches!(e.kind, DecodeErrorKind::BadLength { length: 4, .. }),
        "{e}"
    );
    // An empty SA payload.
    let e = decode_err(&raw(PayloadType::SA.0, &generic(0, 0, &[])));
    assert!(matches!(e.kind, DecodeErrorKind::BadLength { .. }), "{e}");
}

#[test]
fn unknown_attributes_are_kept_verbatim_and_refused_by_negotiation() {
    // Proposal 1: one ENCR transform with an unknown TV attribute; proposal 2: fine.
    let mut sa = vec![2, 0, 0, 20, 1, 1, 0, 1];
    sa.extend_from_slice(&[0, 0, 0, 12, 1, 0, 0, 12, 0x80, 0x63, 0, 1]);
    sa.extend_from_slice(&[0, 0, 0, 16, 2, 1, 0, 1, 0, 0, 0, 8, 2, 0, 0, 5]);
    let bytes = raw(PayloadType::SA.0, &generic(0, 0, &sa));
    let m = Message::decode(&bytes).unwrap();
    let Payload::Sa(sa) = &m.payloads[0] else {
        panic!()
    };
    assert_eq!(sa.proposals.len(), 2);
    assert_eq!(
        sa.proposals[0].transforms[0].other_attributes,
        vec![0x80, 0x63, 0, 1]
    );
    assert_eq!(sa.proposals[0].transforms[0].key_length, None);
    assert!(sa.proposals[1].transforms[0].other_attributes.is_empty());
    // Exact inverse: the unknown attribute is written back as it came.
    assert_eq!(m.to_bytes().unwrap(), bytes);
    // Negotiation (§3.3.6) refuses proposal 1 and says why.
    let ours =
        crate::proposal::parse_proposals(super::super::ProtocolId::IKE, "aes128-sha256-x25519")
            .unwrap();
    let report = crate::proposal::select(&ours, sa, None)
        .unwrap_err()
        .to_string();
    assert!(report.contains("unsupported attributes"), "{report}");
    // A TLV Key Length is kept verbatim too; so is a repeated TV one.
    for attrs in [
        vec![0x00, 0x0e, 0, 2, 1, 0],
        vec![0x80, 0x0e, 0, 128, 0x80, 0x0e, 1, 0],
    ] {
        let tlen = 8 + attrs.len();
        let mut sa = vec![0, 0, 0, (8 + tlen) as u8, 1, 1, 0, 1];
        sa.extend_from_slice(&[0, 0, 0, tlen as u8, 1, 0, 0, 12]);
        sa.extend_from_slice(&attrs);
        let bytes = raw(PayloadType::SA.0, &generic(0, 0, &sa));
        let m = Message::decode(&bytes).unwrap();
        let Payload::Sa(sa) = &m.payloads[0] else {
            panic!()
        };
        assert_eq!(sa.proposals[0].transforms[0].other_attributes, attrs);
        assert_eq!(m.to_bytes().unwrap(), bytes);
    }
    // A TLV attribute running past the transform is an error.
    let mut sa = vec![0, 0, 0, 20, 1, 1, 0, 1];
    sa.extend_from_slice(&[0, 0, 0, 12, 1, 0, 0, 12, 0x00, 0x63, 0, 9]);
    let e = decode_err(&raw(PayloadType::SA.0, &generic(0, 0, &sa)));
    assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }), "{e}");
    // An SA payload without any proposal is malformed.
    let e = decode_err(&raw(PayloadType::SA.0, &generic(0, 0, &[])));
    assert!(
        e.to_string().contains("without proposals")
            || matches!(e.kind, DecodeErrorKind::BadLength { .. }),
        "{e}"
    );
}

#[test]
fn ts_errors() {
    let ts = |num: u8, sel: &[u8]| {
        let mut b = vec![num, 0, 0, 0];
        b.extend_from_slice(sel);
        raw(PayloadType::TSI.0, &generic(0, 0, &b))
    };
    let v4 = [7, 0, 0, 16, 0, 0, 255, 255, 10, 0, 0, 1, 10, 0, 0, 9];
    assert!(Message::decode(&ts(1, &v4)).is_ok());
    let e = decode_err(&ts(2, &v4));
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::CountMismatch {
                declared: 2,
                actual: 1,
                ..
            }
        ),
        "{e}"
    );
    let mut bad = v4;
    bad[3] = 17;
    let e = decode_err(&ts(1, &bad));
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::BadLength {
                length: 17,
                min: 16,
                ..
            }
        ),
        "{e}"
    );
    // Start address above end address.
    let mut bad = v4;
    bad[11] = 10;
    let e = decode_err(&ts(1, &bad));
    assert!(
        matches!(e.kind, DecodeErrorKind::InvalidValue { .. }),
        "{e}"
    );
    // Start port above end port (and not OPAQUE).
    let mut bad = v4;
    bad[4..8].copy_from_slice(&[0, 9, 0, 8]);
    let e = decode_err(&ts(1, &bad));
    assert!(
        matches!(e.kind, DecodeErrorKind::InvalidValue { .. }),
        "{e}"
    );
    // OPAQUE is fine.
    let mut ok = v4;
    ok[4..8].copy_from_slice(&[255, 255, 0, 0]);
    let m = Message::decode(&ts(1, &ok)).unwrap();
    let Payload::TsI(t) = &m.payloads[0] else {
        panic!()
    };
    assert_eq!(t.ip_selectors().next().unwrap().ports, PortRange::Opaque);
    // Unknown TS type kept.
    let m = Message::decode(&ts(1, &[10, 0, 0, 6, 1, 2])).unwrap();
    let Payload::TsI(t) = &m.payloads[0] else {
        panic!()
    };
    assert!(t.has_other_types());
}

#[test]
fn other_payload_errors() {
    // Delete: ESP with SPI size 8.
    let e = decode_err(&raw(
        PayloadType::D.0,
        &generic(0, 0, &[3, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]),
    ));
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::InvalidValue {
                what: "Delete SPI size",
                value: 8
            }
        ),
        "{e}"
    );
    // Delete: Num of SPIs disagrees.
    let e = decode_err(&raw(
        PayloadType::D.0,
        &generic(0, 0, &[3, 4, 0, 2, 1, 2, 3, 4]),
    ));
    assert!(
        matches!(e.kind, DecodeErrorKind::CountMismatch { .. }),
        "{e}"
    );
    // Delete: IKE with SPIs.
    let e = decode_err(&raw(PayloadType::D.0, &generic(0, 0, &[1, 0, 0, 1])));
    assert!(
        matches!(e.kind, DecodeErrorKind::CountMismatch { .. }),
        "{e}"
    );
    // ID_IPV4_ADDR of 5 octets.
    let e = decode_err(&raw(
        PayloadType::IDI.0,
        &generic(0, 0, &[1, 0, 0, 0, 1, 2, 3, 4, 5]),
    ));
    assert!(
        matches!(e.kind, DecodeErrorKind::InvalidValue { value: 5, .. }),
        "{e}"
    );
    assert_eq!(e.payload, Some(PayloadType::IDI));
    // ID_FQDN with invalid UTF-8.
    let e = decode_err(&raw(
        PayloadType::IDR.0,
        &generic(0, 0, &[2, 0, 0, 0, b'a', 0xff]),
    ));
    assert!(
        matches!(e.kind, DecodeErrorKind::InvalidValue { .. }),
        "{e}"
    );
    assert_eq!(e.offset, 37);
    // Notify SPI size beyond the payload.
    let e = decode_err(&raw(
        PayloadType::N.0,
        &generic(0, 0, &[3, 4, 0x40, 0x09, 1]),
    ));
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 4,
                available: 1
            }
        ),
        "{e}"
    );
    // EAP length field disagrees.
    let e = decode_err(&raw(PayloadType::EAP.0, &generic(0, 0, &[1, 1, 0, 9, 1])));
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::LengthMismatch {
                declared: 9,
                actual: 5
            }
        ),
        "{e}"
    );
    // CP attribute running past the payload.
    let e = decode_err(&raw(
        PayloadType::CP.0,
        &generic(0, 0, &[1, 0, 0, 0, 0, 1, 0, 4, 10]),
    ));
    assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }), "{e}");
    // CP R bit ignored.
    let m = Message::decode(&raw(
        PayloadType::CP.0,
        &generic(0, 0, &[1, 0, 0, 0, 0x80, 1, 0, 0]),
    ))
    .unwrap();
    let Payload::Cp(cp) = &m.payloads[0] else {
        panic!()
    };
    assert_eq!(cp.attributes[0].ty, CfgAttrType::INTERNAL_IP4_ADDRESS);
}

#[test]
fn encoder_refuses_unrepresentable_values() {
    let h = hdr(ExchangeType::INFORMATIONAL, true, false, 1);
    let bad = [
        Payload::Nonce(vec![0; 15]),
        Payload::Sa(SaPayload::default()),
        Payload::Eap(vec![1, 2, 0, 9]),
        Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE,
            spis: vec![Spi(300)],
        }),
        Payload::Unknown(UnknownPayload {
            ty: PayloadType::SA,
            critical: false,
            data: vec![],
        }),
        Payload::VendorId(vec![0; 70000]),
    ];
    for p in bad {
        assert!(Message::new(h, vec![p.clone()]).is_err(), "{p:?}");
    }
}

#[test]
fn error_display_names_payload_offset_and_reason() {
    let e = decode_err(&raw(PayloadType::KE.0, &generic(0, 0, &[0, 31])));
    assert_eq!(
        e.to_string(),
        "KE payload at offset 28: payload length 6 is below the minimum 8"
    );
}

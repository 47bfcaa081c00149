//! Proposal strings, SA payload construction and negotiation (RFC 7296 §2.7, §3.3).

use ike::message::sa::{Proposal, ProtocolId, SaPayload, Transform};
use ike::proposal::{
    Encr, InvalidResponse, KeMatch, Mismatch, ProposalConfig, ProposalError, check_response,
    parse_proposals, retry_group, select, to_sa_payload,
};
use ipsec_core::crypto::AeadAlgorithm;
use ipsec_core::transform::{EncrId, EsnId, IntegId, KeId, PrfId, TransformType};

const IKE: ProtocolId = ProtocolId::IKE;
const ESP: ProtocolId = ProtocolId::ESP;

fn ike(s: &str) -> Vec<ProposalConfig> {
    parse_proposals(IKE, s).unwrap()
}

fn esp(s: &str) -> Vec<ProposalConfig> {
    parse_proposals(ESP, s).unwrap()
}

fn t(ty: TransformType, id: u16) -> Transform {
    Transform::new(ty, id)
}

fn proposal(num: u8, protocol: ProtocolId, spi: &[u8], ts: Vec<Transform>) -> Proposal {
    Proposal {
        num,
        protocol,
        spi: spi.to_vec(),
        transforms: ts,
    }
}

// ------------------------------------------------------------------ strings

#[test]
fn proposal_strings_round_trip() {
    for (proto, input, canonical) in [
        (
            IKE,
            "aes256gcm16-prfsha256-x25519",
            "aes256gcm16-prfsha256-x25519",
        ),
        (
            IKE,
            "chacha20poly1305-prfsha384-ecp256",
            "chacha20poly1305-prfsha384-ecp256",
        ),
        // sha256 as integrity implies prfsha256 (strongSwan).
        (
            IKE,
            "aes128-sha256-modp2048",
            "aes128-sha256-prfsha256-modp2048",
        ),
        (
            IKE,
            "aes128-aes256-sha384-sha256-x25519-ecp256",
            "aes128-aes256-sha384-sha256-prfsha384-prfsha256-x25519-ecp256",
        ),
        (
            IKE,
            "AES256GCM128-PRFSHA512-Curve25519",
            "aes256gcm16-prfsha512-x25519",
        ),
        (ESP, "aes256gcm16-esn", "aes256gcm16-esn"),
        (ESP, "aes128gcm16", "aes128gcm16"),
        (ESP, "aes128gcm128-noesn", "aes128gcm16"),
        (ESP, "aes256-sha256", "aes256-sha256"),
        (ESP, "aes256gcm16-x25519", "aes256gcm16-x25519"),
        (ESP, "aes256gcm16-x25519-none", "aes256gcm16-x25519-none"),
        (ESP, "aes192-sha512-esn-noesn", "aes192-sha512-esn-noesn"),
        (
            ESP,
            "chacha20poly1305-aes256gcm16-noesn-esn",
            "chacha20poly1305-aes256gcm16-noesn-esn",
        ),
    ] {
        let cfg = ProposalConfig::parse(proto, input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(cfg.to_string(), canonical, "{input}");
        assert_eq!(ProposalConfig::parse(proto, canonical).unwrap(), cfg);
    }
    // The sha384/sha256 order above: integ keeps the written order, and the implied PRFs
    // follow it.
    let c = &ike("aes128-sha384-sha256-x25519")[0];
    assert_eq!(c.prf(), &[PrfId::HMAC_SHA2_384, PrfId::HMAC_SHA2_256]);
    // An explicit PRF is not extended with implied ones.
    let c = &ike("aes128-sha256-prfsha512-x25519")[0];
    assert_eq!(c.prf(), &[PrfId::HMAC_SHA2_512]);
    // ESP defaults: noesn, no PFS.
    let c = &esp("aes128gcm16")[0];
    assert_eq!(c.esn(), &[EsnId::NO_ESN]);
    assert!(c.ke().is_empty());
    assert_eq!(c.preferred_ke(), None);
}

#[test]
fn several_proposals() {
    let list = ike("aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048");
    assert_eq!(list.len(), 2);
    assert_eq!(
        ike::proposal::display_proposals(&list),
        "aes256gcm16-prfsha256-x25519, aes128-sha256-prfsha256-modp2048"
    );
    assert_eq!(
        parse_proposals(IKE, "aes256gcm16-prfsha256-x25519,"),
        Err(ProposalError::Empty)
    );
}

#[test]
fn proposal_string_errors() {
    let e = ProposalConfig::parse(IKE, "aes256-sha1-modp1024").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("unknown algorithm 'sha1'"), "{msg}");
    assert!(
        msg.contains("aes256gcm16") && msg.contains("modp2048"),
        "{msg}"
    );

    let invalid = |proto, s: &str, needle: &str| {
        let e = ProposalConfig::parse(proto, s).unwrap_err();
        assert!(
            matches!(e, ProposalError::Invalid { .. }) && e.to_string().contains(needle),
            "{s}: {e}"
        );
    };
    invalid(IKE, "aes256gcm16-x25519", "PRF algorithm is mandatory");
    invalid(
        IKE,
        "aes256gcm16-sha256-prfsha256-x25519",
        "AEAD cipher takes no integrity",
    );
    invalid(ESP, "aes256gcm16-sha256", "AEAD cipher takes no integrity");
    invalid(ESP, "aes256", "needs an integrity algorithm");
    invalid(IKE, "aes256-sha256", "key exchange");
    invalid(IKE, "aes256gcm16-prfsha256-none", "key exchange");
    invalid(
        IKE,
        "aes256gcm16-prfsha256-x25519-esn",
        "ESN applies to ESP",
    );
    invalid(ESP, "aes256gcm16-prfsha256", "PRF applies to IKE");
    invalid(ESP, "aes256gcm16-aes256-sha256", "mixes AEAD and non-AEAD");
    invalid(ESP, "aes256gcm16-none", "PFS optional");
    invalid(ESP, "sha256-x25519", "no encryption algorithm");
    assert_eq!(ProposalConfig::parse(ESP, "  "), Err(ProposalError::Empty));
    assert!(ProposalConfig::parse(ESP, "aes256gcm16--esn").is_err());
}

// ------------------------------------------------------------------ wire proposals

#[test]
fn sa_payload_from_config() {
    let sa = to_sa_payload(
        &ike("aes256gcm16-aes128gcm16-prfsha256-x25519-ecp256, aes128-sha256-modp2048"),
        &[],
    );
    assert_eq!(sa.proposals.len(), 2);
    let p1 = &sa.proposals[0];
    assert_eq!((p1.num, p1.protocol, p1.spi.len()), (1, IKE, 0));
    assert_eq!(
        p1.transforms,
        vec![
            Transform::with_key_length(TransformType::ENCR, EncrId::AES_GCM_16.0, 256),
            Transform::with_key_length(TransformType::ENCR, EncrId::AES_GCM_16.0, 128),
            t(TransformType::PRF, PrfId::HMAC_SHA2_256.0),
            t(TransformType::KE, KeId::CURVE25519.0),
            t(TransformType::KE, KeId::ECP_256.0),
        ]
    );
    let p2 = &sa.proposals[1];
    assert_eq!(p2.num, 2);
    assert_eq!(
        p2.transforms,
        vec![
            Transform::with_key_length(TransformType::ENCR, EncrId::AES_CBC.0, 128),
            t(TransformType::PRF, PrfId::HMAC_SHA2_256.0),
            t(TransformType::INTEG, IntegId::HMAC_SHA2_256_128.0),
            t(TransformType::KE, KeId::MODP_2048.0),
        ]
    );
    let esp_sa = to_sa_payload(&esp("chacha20poly1305-esn-noesn"), &[1, 2, 3, 4]);
    assert_eq!(
        esp_sa.proposals[0],
        proposal(
            1,
            ESP,
            &[1, 2, 3, 4],
            vec![
                t(TransformType::ENCR, EncrId::CHACHA20_POLY1305.0),
                t(TransformType::ESN, 1),
                t(TransformType::ESN, 0),
            ]
        )
    );
}

// ------------------------------------------------------------------ responder selection

#[test]
fn responder_preference_wins() {
    let ours = ike("aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256");
    let peer = to_sa_payload(
        &ike("aes128gcm16-aes256gcm16-prfsha256-prfsha384-ecp256-x25519"),
        &[],
    );
    let chosen = select(&ours, &peer, None).unwrap();
    assert_eq!(chosen.suite.encr, Encr::Aead(AeadAlgorithm::Aes256Gcm));
    assert_eq!(chosen.suite.prf, Some(PrfId::HMAC_SHA2_384));
    assert_eq!(chosen.suite.ke, KeId::CURVE25519);
    assert_eq!(chosen.suite.integ, None);
    assert_eq!(chosen.suite.to_string(), "aes256gcm16-prfsha384-x25519");
    assert_eq!(chosen.num, 1);
    // One transform per type, in ENCR, PRF, KE order; no INTEG since the peer sent none.
    assert_eq!(
        chosen.transforms,
        vec![
            Transform::with_key_length(TransformType::ENCR, 20, 256),
            t(TransformType::PRF, 6),
            t(TransformType::KE, 31),
        ]
    );

    // Proposals: ours in our order, even if the peer lists another first.
    let ours = ike("aes128-sha256-modp2048, aes256gcm16-prfsha256-x25519");
    let peer = to_sa_payload(
        &ike("aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048"),
        &[],
    );
    let chosen = select(&ours, &peer, None).unwrap();
    assert_eq!(chosen.num, 2, "the peer's number of the proposal we prefer");
    assert_eq!(chosen.suite.encr, Encr::AES128_CBC);
    assert_eq!(chosen.suite.integ, Some(IntegId::HMAC_SHA2_256_128));
    assert_eq!(chosen.suite.prf, Some(PrfId::HMAC_SHA2_256));
}

#[test]
fn received_ke_group_is_taken_when_acceptable() {
    let ours = ike("aes256gcm16-prfsha256-x25519-ecp256-modp2048");
    let peer = to_sa_payload(&ike("aes256gcm16-prfsha256-ecp256-x25519"), &[]);
    // The peer guessed ecp256: both accept it, so no INVALID_KE_PAYLOAD round trip.
    let c = select(&ours, &peer, Some(KeId::ECP_256)).unwrap();
    assert_eq!(c.suite.ke, KeId::ECP_256);
    assert_eq!(c.check_ke(Some(KeId::ECP_256)), KeMatch::Match);
    // Without a hint our order decides; a KE payload of another group is then refused.
    let c = select(&ours, &peer, None).unwrap();
    assert_eq!(c.suite.ke, KeId::CURVE25519);
    assert_eq!(
        c.check_ke(Some(KeId::ECP_256)),
        KeMatch::InvalidKePayload {
            requested: KeId::CURVE25519
        }
    );
    assert_eq!(
        c.check_ke(None),
        KeMatch::InvalidKePayload {
            requested: KeId::CURVE25519
        }
    );
    // A KE payload for a group only one side accepts does not steer the choice.
    let c = select(&ours, &peer, Some(KeId::MODP_2048)).unwrap();
    assert_eq!(c.suite.ke, KeId::CURVE25519);
    assert_eq!(
        c.check_ke(Some(KeId::MODP_2048)),
        KeMatch::InvalidKePayload {
            requested: KeId::CURVE25519
        }
    );
    // The initiator retries only with a group it offered.
    let init = ike("aes256gcm16-prfsha256-ecp256-x25519");
    assert_eq!(retry_group(&init, KeId::CURVE25519), Some(KeId::CURVE25519));
    assert_eq!(retry_group(&init, KeId::MODP_2048), None);
    assert_eq!(retry_group(&init, KeId::NONE), None);
}

#[test]
fn no_proposal_chosen_names_the_types() {
    let ours = ike("aes256gcm16-prfsha256-x25519-ecp256");
    let peer = SaPayload {
        proposals: vec![proposal(
            1,
            IKE,
            &[],
            vec![
                Transform::with_key_length(TransformType::ENCR, 20, 256),
                t(TransformType::PRF, 5),
                t(TransformType::KE, 2),
            ],
        )],
    };
    let e = select(&ours, &peer, Some(KeId(2))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no proposal chosen: peer proposal 1 vs our proposal 1 \
         (aes256gcm16-prfsha256-x25519-ecp256): \
         no common KE: we accept [x25519, ecp256], peer offered [modp1024]"
    );

    // Several proposals and several types at once.
    let ours = ike("aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048");
    let peer = SaPayload {
        proposals: vec![
            proposal(
                1,
                IKE,
                &[],
                vec![
                    t(TransformType::ENCR, 3), // 3DES
                    t(TransformType::PRF, 2),
                    t(TransformType::INTEG, 2),
                    t(TransformType::KE, 2),
                ],
            ),
            proposal(
                2,
                ESP,
                &[0, 0, 0, 1],
                vec![t(TransformType::ENCR, 28), t(TransformType::ESN, 0)],
            ),
        ],
    };
    let e = select(&ours, &peer, None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no common ENCR: we accept [aes256gcm16], peer offered [3des]"),
        "{msg}"
    );
    assert!(
        msg.contains("no common PRF: we accept [prfsha256], peer offered [prfsha1]"),
        "{msg}"
    );
    assert!(
        msg.contains("no common INTEG: we accept [sha256], peer offered [sha1]"),
        "{msg}"
    );
    assert!(
        msg.contains("we accept [modp2048], peer offered [modp1024]"),
        "{msg}"
    );
    // The ESP proposal is reported only as a protocol mismatch... which is dropped since
    // IKE proposals were there to compare with.
    assert!(!msg.contains("peer proposes ESP"), "{msg}");
    assert_eq!(e.mismatches.len(), 2);
    assert!(e.mismatches.iter().all(|m| m.peer_num == 1));

    // Only wrong-protocol proposals: that is the reason given.
    let peer = SaPayload {
        proposals: vec![peer.proposals[1].clone()],
    };
    let e = select(&ours, &peer, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("peer proposes ESP, we negotiate IKE"),
        "{e}"
    );
    assert_eq!(
        select(&ours, &SaPayload::default(), None)
            .unwrap_err()
            .to_string(),
        "no proposal chosen: peer offered no proposal"
    );
}

#[test]
fn key_length_must_match() {
    let ours = esp("aes256gcm16");
    let peer = SaPayload {
        proposals: vec![proposal(
            1,
            ESP,
            &[1, 1, 1, 1],
            vec![
                Transform::with_key_length(TransformType::ENCR, 20, 128),
                Transform::new(TransformType::ENCR, 20), // no Key Length: not AES-GCM-256
                t(TransformType::ESN, 0),
            ],
        )],
    };
    let e = select(&ours, &peer, None).unwrap_err();
    assert!(
        e.to_string().contains(
            "no common ENCR: we accept [aes256gcm16], peer offered [aes128gcm16, aesgcm16]"
        ),
        "{e}"
    );
}

// ------------------------------------------------------------------ ESP specifics

#[test]
fn esp_pfs_and_esn() {
    let spi = [0xc0, 0, 0, 1];
    // PFS required by us, the peer offers none: KE mismatch with "[none]".
    let e = select(
        &esp("aes256gcm16-x25519"),
        &to_sa_payload(&esp("aes256gcm16"), &spi),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("no common KE: we accept [x25519], peer offered [none]"),
        "{e}"
    );
    // PFS optional on our side: the peer without KE is accepted, and no KE transform is
    // echoed; with KE, the group is chosen.
    let ours = esp("aes256gcm16-x25519-none-esn-noesn");
    let c = select(&ours, &to_sa_payload(&esp("aes256gcm16"), &spi), None).unwrap();
    assert_eq!(c.suite.ke, KeId::NONE);
    assert_eq!(c.suite.key_exchange(), None);
    assert!(!c.suite.esn);
    assert!(c.transforms.iter().all(|t| t.ty != TransformType::KE));
    assert_eq!(c.check_ke(None), KeMatch::Match);
    assert_eq!(c.check_ke(Some(KeId::CURVE25519)), KeMatch::Unexpected);
    let c = select(
        &ours,
        &to_sa_payload(&esp("aes256gcm16-x25519-esn"), &spi),
        None,
    )
    .unwrap();
    assert_eq!(c.suite.ke, KeId::CURVE25519);
    assert!(c.suite.esn);
    assert_eq!(c.peer_spi, spi);
    // We accept no ESN only; the peer insists on ESN.
    let e = select(
        &esp("aes128gcm16"),
        &to_sa_payload(&esp("aes128gcm16-esn"), &spi),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("no common ESN: we accept [noesn], peer offered [esn]"),
        "{e}"
    );
    // An ESP proposal without an ESN transform reads as "no ESN".
    let peer = SaPayload {
        proposals: vec![proposal(
            1,
            ESP,
            &spi,
            vec![Transform::with_key_length(TransformType::ENCR, 20, 128)],
        )],
    };
    let c = select(&esp("aes128gcm16"), &peer, None).unwrap();
    assert!(!c.suite.esn);
    // ESP SPI must be 4 octets.
    let e = select(
        &esp("aes128gcm16"),
        &to_sa_payload(&esp("aes128gcm16"), &[1; 8]),
        None,
    )
    .unwrap_err();
    assert!(
        e.mismatches[0]
            .reasons
            .contains(&Mismatch::SpiSize { len: 8 })
    );
}

#[test]
fn aead_with_explicit_integ_none_and_unknown_types() {
    let spi = [0, 0, 0, 7];
    let peer = SaPayload {
        proposals: vec![proposal(
            1,
            ESP,
            &spi,
            vec![
                Transform::with_key_length(TransformType::ENCR, 20, 256),
                t(TransformType::INTEG, 0),
                t(TransformType::ESN, 0),
                t(TransformType(6), 0), // RFC 9370 ADDKE1 = NONE: ignorable
            ],
        )],
    };
    let c = select(&esp("aes256gcm16"), &peer, None).unwrap();
    // The explicit INTEG NONE is echoed.
    assert!(c.transforms.contains(&t(TransformType::INTEG, 0)));
    let mut peer2 = peer.clone();
    peer2.proposals[0].transforms.push(t(TransformType(6), 31));
    let e = select(&esp("aes256gcm16"), &peer2, None).unwrap_err();
    assert!(
        e.to_string().contains("unsupported transform type 6"),
        "{e}"
    );
    // AEAD proposal with a real integrity algorithm only: no INTEG overlap.
    let mut peer3 = peer.clone();
    peer3.proposals[0].transforms[1] = t(TransformType::INTEG, 12);
    let e = select(&esp("aes256gcm16"), &peer3, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("no common INTEG: we accept [none], peer offered [sha256]"),
        "{e}"
    );
}

// ------------------------------------------------------------------ initiator check

/// Initiator offers, responder selects and answers, initiator checks: both end with the
/// same suite, for a range of configurations.
#[test]
fn initiator_accepts_the_responders_choice() {
    let cases = [
        (
            IKE,
            "aes128gcm16-aes256gcm16-prfsha256-ecp256-x25519, aes256-sha512-modp2048",
            "aes256gcm16-prfsha512-prfsha256-x25519, aes256-sha512-modp2048",
        ),
        (
            IKE,
            "aes256-sha256-modp2048",
            "aes256gcm16-prfsha256-x25519, aes256-sha256-modp2048",
        ),
        (ESP, "aes256gcm16-esn-noesn", "aes256gcm16-esn"),
        (ESP, "aes128-sha256-x25519", "aes128-sha384-sha256-x25519"),
        (
            ESP,
            "chacha20poly1305",
            "aes256gcm16, chacha20poly1305-x25519-none",
        ),
    ];
    for (proto, init_s, resp_s) in cases {
        let init = parse_proposals(proto, init_s).unwrap();
        let resp = parse_proposals(proto, resp_s).unwrap();
        let (spi_i, spi_r): (&[u8], &[u8]) = if proto == IKE {
            (&[], &[])
        } else {
            (&[1, 2, 3, 4], &[5, 6, 7, 8])
        };
        let offer = to_sa_payload(&init, spi_i);
        let ke = init.iter().find_map(|c| c.preferred_ke());
        let chosen = select(&resp, &offer, ke).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chosen.peer_spi, spi_i);
        let reply = SaPayload {
            proposals: vec![chosen.response(spi_r)],
        };
        let accepted = check_response(&init, &reply).unwrap_or_else(|e| panic!("{init_s}: {e}"));
        assert_eq!(accepted.suite, chosen.suite, "{init_s} / {resp_s}");
        assert_eq!(accepted.peer_spi, spi_r);
        assert_eq!(accepted.num, chosen.num);
    }
}

#[test]
fn initiator_rejects_bad_replies() {
    let init = ike("aes256gcm16-prfsha256-x25519-ecp256, aes128-sha256-modp2048");
    let good = proposal(
        1,
        IKE,
        &[],
        vec![
            Transform::with_key_length(TransformType::ENCR, 20, 256),
            t(TransformType::PRF, 5),
            t(TransformType::KE, 19),
        ],
    );
    let reply = |p: Proposal| SaPayload { proposals: vec![p] };
    assert_eq!(
        check_response(&init, &reply(good.clone()))
            .unwrap()
            .suite
            .ke,
        KeId::ECP_256
    );

    assert_eq!(
        check_response(
            &init,
            &SaPayload {
                proposals: vec![good.clone(), good.clone()]
            }
        ),
        Err(InvalidResponse::ProposalCount(2))
    );
    assert_eq!(
        check_response(&init, &SaPayload::default()),
        Err(InvalidResponse::ProposalCount(0))
    );
    let mut p = good.clone();
    p.num = 3;
    assert_eq!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::UnknownNumber(3))
    );
    // Proposal 2 is CBC: the AEAD transforms were not offered there.
    let mut p = good.clone();
    p.num = 2;
    assert!(matches!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::NotOffered(_))
    ));
    let mut p = good.clone();
    p.transforms.push(t(TransformType::KE, 31));
    assert_eq!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::Duplicate(TransformType::KE))
    );
    let mut p = good.clone();
    p.transforms[2] = t(TransformType::KE, 14);
    let e = check_response(&init, &reply(p)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "reply chose modp2048, which we did not offer"
    );
    let mut p = good.clone();
    p.transforms.remove(2);
    assert_eq!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::Missing(TransformType::KE))
    );
    let mut p = good.clone();
    p.transforms.remove(1);
    assert_eq!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::Missing(TransformType::PRF))
    );
    let mut p = good.clone();
    p.protocol = ESP;
    assert_eq!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::Protocol(3))
    );
    let mut p = good;
    p.spi = vec![1; 4];
    assert_eq!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::SpiSize(4))
    );

    // ESP: a reply without KE when we required PFS.
    let init = esp("aes256gcm16-x25519");
    let p = proposal(
        1,
        ESP,
        &[9; 4],
        vec![
            Transform::with_key_length(TransformType::ENCR, 20, 256),
            t(TransformType::ESN, 0),
        ],
    );
    assert_eq!(
        check_response(&init, &reply(p)),
        Err(InvalidResponse::Missing(TransformType::KE))
    );
}

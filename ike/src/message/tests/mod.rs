//! Tests of the codec: property round trips, negative cases, SK/SKF protection with known
//! answers, and a differential check against rusticata's `ipsec-parser`.

mod differential;
mod negative;
mod protection;
mod roundtrip;
pub(crate) mod strategies;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::transform::{EncrId, IntegId, KeId, PrfId, TransformType};
use ipsec_core::ts::{PortRange, TrafficSelector};
use ipsec_core::{IkeSpi, Spi};

use super::*;

/// Hex string (whitespace ignored) to bytes.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn hdr(exchange: ExchangeType, initiator: bool, response: bool, mid: u32) -> IkeHeader {
    IkeHeader::new(
        IkeSpi([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
        if exchange == ExchangeType::IKE_SA_INIT && !response {
            IkeSpi::ZERO
        } else {
            IkeSpi([0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01])
        },
        exchange,
        Flags::new(initiator, response),
        mid,
    )
}

pub(crate) fn ike_proposal() -> Proposal {
    Proposal::new(
        1,
        ProtocolId::IKE,
        vec![],
        vec![
            Transform::with_key_length(TransformType::ENCR, EncrId::AES_GCM_16.0, 256),
            Transform::with_key_length(TransformType::ENCR, EncrId::AES_GCM_16.0, 128),
            Transform::new(TransformType::ENCR, EncrId::CHACHA20_POLY1305.0),
            Transform::new(TransformType::PRF, PrfId::HMAC_SHA2_256.0),
            Transform::new(TransformType::KE, KeId::CURVE25519.0),
            Transform::new(TransformType::KE, KeId::ECP_256.0),
        ],
    )
}

pub(crate) fn ike_cbc_proposal() -> Proposal {
    Proposal::new(
        2,
        ProtocolId::IKE,
        vec![],
        vec![
            Transform::with_key_length(TransformType::ENCR, EncrId::AES_CBC.0, 256),
            Transform::new(TransformType::PRF, PrfId::HMAC_SHA2_256.0),
            Transform::new(TransformType::INTEG, IntegId::HMAC_SHA2_256_128.0),
            Transform::new(TransformType::KE, KeId::MODP_2048.0),
        ],
    )
}

pub(crate) fn esp_proposal(spi: u32) -> Proposal {
    Proposal::new(
        1,
        ProtocolId::ESP,
        Spi(spi).to_bytes().to_vec(),
        vec![
            Transform::with_key_length(TransformType::ENCR, EncrId::AES_GCM_16.0, 256),
            Transform::new(TransformType::ESN, 0),
        ],
    )
}

pub(crate) fn ts4(a: [u8; 4], b: [u8; 4]) -> TrafficSelector {
    TrafficSelector::new(IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b))).unwrap()
}

pub(crate) fn ts6(prefix: &str, len: u8) -> TrafficSelector {
    TrafficSelector::from_prefix(prefix.parse::<Ipv6Addr>().unwrap().into(), len).unwrap()
}

/// A realistic IKE_SA_INIT request.
pub(crate) fn sa_init_request() -> Message {
    Message::new(
        hdr(ExchangeType::IKE_SA_INIT, true, false, 0),
        vec![
            Payload::Sa(SaPayload::new(vec![ike_proposal(), ike_cbc_proposal()])),
            Payload::Ke(KePayload {
                group: KeId::CURVE25519,
                data: (0..32).collect(),
            }),
            Payload::Nonce((100..132).collect()),
            Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                vec![0xab; 20],
            )),
            Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                vec![0xcd; 20],
            )),
            Payload::Notify(NotifyPayload::new(
                NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
                vec![],
            )),
            Payload::Notify(NotifyPayload::signature_hash_algorithms(&[2, 3, 4])),
            Payload::VendorId(b"ipsec-rs test vendor".to_vec()),
        ],
    )
    .unwrap()
}

/// A realistic IKE_SA_INIT response.
pub(crate) fn sa_init_response() -> Message {
    Message::new(
        hdr(ExchangeType::IKE_SA_INIT, false, true, 0),
        vec![
            Payload::Sa(SaPayload::new(vec![Proposal::new(
                1,
                ProtocolId::IKE,
                vec![],
                vec![
                    Transform::with_key_length(TransformType::ENCR, EncrId::AES_GCM_16.0, 256),
                    Transform::new(TransformType::PRF, PrfId::HMAC_SHA2_256.0),
                    Transform::new(TransformType::KE, KeId::CURVE25519.0),
                ],
            )])),
            Payload::Ke(KePayload {
                group: KeId::CURVE25519,
                data: (32..64).collect(),
            }),
            Payload::Nonce(vec![0x5a; 48]),
            Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                vec![1; 20],
            )),
            Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                vec![2; 20],
            )),
            Payload::CertReq(CertPayload {
                encoding: CertEncoding::X509_SIGNATURE,
                data: vec![0x77; 40],
            }),
            Payload::Notify(NotifyPayload::new(
                NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
                vec![],
            )),
        ],
    )
    .unwrap()
}

/// The inner payloads of an IKE_AUTH request.
pub(crate) fn ike_auth_inner() -> Vec<Payload> {
    vec![
        Payload::IdI(Identification::Fqdn("moon.example.org".into())),
        Payload::Cert(CertPayload {
            encoding: CertEncoding::X509_SIGNATURE,
            data: vec![0x30; 300],
        }),
        Payload::Notify(NotifyPayload::new(NotifyType::INITIAL_CONTACT, vec![])),
        Payload::IdR(Identification::Ipv4(Ipv4Addr::new(192, 0, 2, 1))),
        Payload::Auth(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: vec![0x42; 32],
        }),
        Payload::Cp(CpPayload {
            cfg_type: CfgType::CFG_REQUEST,
            attributes: vec![
                CfgAttribute {
                    ty: CfgAttrType::INTERNAL_IP4_ADDRESS,
                    value: vec![],
                },
                CfgAttribute {
                    ty: CfgAttrType::INTERNAL_IP6_DNS,
                    value: vec![],
                },
            ],
        }),
        Payload::Notify(NotifyPayload::new(NotifyType::USE_TRANSPORT_MODE, vec![])),
        Payload::Notify(NotifyPayload::new(
            NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED,
            vec![],
        )),
        Payload::Notify(NotifyPayload::new(NotifyType::MOBIKE_SUPPORTED, vec![])),
        Payload::Sa(SaPayload::new(vec![esp_proposal(0xc0ffee01)])),
        Payload::TsI(TsPayload::new([
            ts4([10, 0, 0, 0], [10, 0, 0, 255]),
            ts6("fd00::", 64).with_protocol(6, PortRange::Range(443, 443)),
        ])),
        Payload::TsR(TsPayload::new([
            ts4([0, 0, 0, 0], [255, 255, 255, 255]).with_protocol(17, PortRange::Opaque)
        ])),
    ]
}

/// An INFORMATIONAL request with Delete payloads, in clear (as inner payloads).
pub(crate) fn informational_inner() -> Vec<Payload> {
    vec![
        Payload::Delete(DeletePayload {
            protocol: ProtocolId::ESP,
            spis: vec![Spi(0x1000), Spi(0xdeadbeef), Spi(0x01020304)],
        }),
        Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE,
            spis: vec![],
        }),
        Payload::Notify(NotifyPayload::with_spi(
            NotifyType::REKEY_SA,
            ProtocolId::ESP,
            Spi(0xc0ffee02),
            vec![],
        )),
        Payload::Notify(NotifyPayload::set_window_size(16)),
    ]
}

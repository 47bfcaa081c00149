//! proptest strategies for every payload type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::transform::{KeId, TransformType};
use ipsec_core::ts::{PortRange, TrafficSelector};
use ipsec_core::{IkeSpi, Spi};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::message::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

pub(crate) fn header() -> impl Strategy<Value = IkeHeader> {
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        any::<u8>(),
        0u8..16,
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(|(i, r, x, minor, flags, mid)| {
            let mut h = IkeHeader::new(IkeSpi(i), IkeSpi(r), ExchangeType(x), Flags(flags), mid);
            h.minor_version = minor;
            h
        })
}

pub(crate) fn transform() -> impl Strategy<Value = Transform> {
    (
        any::<u8>(),
        any::<u16>(),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(t, id, kl)| Transform {
            ty: TransformType(t),
            id,
            key_length: kl,
            other_attributes: Vec::new(),
        })
}

pub(crate) fn proposal() -> impl Strategy<Value = Proposal> {
    (any::<u8>(), any::<u8>(), bytes(8), vec(transform(), 0..6)).prop_map(
        |(num, proto, spi, transforms)| Proposal {
            num,
            protocol: ProtocolId(proto),
            spi,
            transforms,
        },
    )
}

pub(crate) fn sa() -> impl Strategy<Value = SaPayload> {
    vec(proposal(), 1..4).prop_map(SaPayload::new)
}

pub(crate) fn identification() -> impl Strategy<Value = Identification> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| Identification::Ipv4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| Identification::Ipv6(Ipv6Addr::from(a))),
        "\\PC{0,24}".prop_map(Identification::Fqdn),
        "[a-z]{1,8}@[a-z]{1,8}\\.org".prop_map(Identification::Rfc822),
        bytes(40).prop_map(Identification::DerAsn1Dn),
        bytes(40).prop_map(Identification::DerAsn1Gn),
        bytes(40).prop_map(Identification::KeyId),
        Just(Identification::Null),
        (any::<u8>(), bytes(20))
            .prop_filter("unknown ID type", |(t, _)| !IdType::KNOWN
                .contains(&IdType(*t)))
            .prop_map(|(t, data)| Identification::Other {
                id_type: IdType(t),
                data
            }),
    ]
}

pub(crate) fn traffic_selector() -> impl Strategy<Value = TrafficSelector> {
    let ports = prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortRange::Range(a.min(b), a.max(b))),
        Just(PortRange::Opaque),
        Just(PortRange::ANY),
    ];
    let addrs = prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| (
            IpAddr::V4(Ipv4Addr::from(a.min(b))),
            IpAddr::V4(Ipv4Addr::from(a.max(b)))
        )),
        (any::<u128>(), any::<u128>()).prop_map(|(a, b)| (
            IpAddr::V6(Ipv6Addr::from(a.min(b))),
            IpAddr::V6(Ipv6Addr::from(a.max(b)))
        )),
    ];
    (addrs, any::<u8>(), ports).prop_map(|((a, b), proto, ports)| {
        TrafficSelector::new(a, b)
            .unwrap()
            .with_protocol(proto, ports)
    })
}

pub(crate) fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        4 => traffic_selector().prop_map(Selector::Ip),
        1 => (any::<u8>(), any::<u8>(), bytes(20))
            .prop_filter("not an address range", |(t, _, _)| *t != 7 && *t != 8)
            .prop_map(|(ts_type, octet1, data)| Selector::Other { ts_type, octet1, data }),
    ]
}

pub(crate) fn ts() -> impl Strategy<Value = TsPayload> {
    vec(selector(), 0..4).prop_map(|selectors| TsPayload { selectors })
}

pub(crate) fn notify() -> impl Strategy<Value = NotifyPayload> {
    (any::<u8>(), bytes(8), any::<u16>(), bytes(40)).prop_map(|(p, spi, ty, data)| NotifyPayload {
        protocol: ProtocolId(p),
        spi,
        ty: NotifyType(ty),
        data,
    })
}

pub(crate) fn delete() -> impl Strategy<Value = DeletePayload> {
    prop_oneof![
        Just(DeletePayload {
            protocol: ProtocolId::IKE,
            spis: vec![]
        }),
        (
            prop_oneof![Just(ProtocolId::ESP), Just(ProtocolId::AH)],
            vec(any::<u32>(), 0..6)
        )
            .prop_map(|(protocol, s)| DeletePayload {
                protocol,
                spis: s.into_iter().map(Spi).collect()
            }),
    ]
}

pub(crate) fn cp() -> impl Strategy<Value = CpPayload> {
    (any::<u8>(), vec((0u16..0x8000, bytes(20)), 0..5)).prop_map(|(t, attrs)| CpPayload {
        cfg_type: CfgType(t),
        attributes: attrs
            .into_iter()
            .map(|(ty, value)| CfgAttribute {
                ty: CfgAttrType(ty),
                value,
            })
            .collect(),
    })
}

pub(crate) fn eap() -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), any::<u8>(), bytes(40)).prop_map(|(code, id, data)| {
        let mut m = vec![code, id];
        m.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
        m.extend_from_slice(&data);
        m
    })
}

pub(crate) fn unknown() -> impl Strategy<Value = UnknownPayload> {
    (1u8..=255, bytes(30))
        .prop_filter("unknown type", |(t, _)| {
            !PayloadType::KNOWN.contains(&PayloadType(*t))
        })
        .prop_map(|(t, data)| UnknownPayload {
            ty: PayloadType(t),
            critical: false,
            data,
        })
}

/// Any payload except SK and SKF.
pub(crate) fn clear_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        sa().prop_map(Payload::Sa),
        (any::<u16>(), bytes(64)).prop_map(|(g, data)| Payload::Ke(KePayload {
            group: KeId(g),
            data
        })),
        identification().prop_map(Payload::IdI),
        identification().prop_map(Payload::IdR),
        (any::<u8>(), bytes(64)).prop_map(|(e, data)| Payload::Cert(CertPayload {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(64)).prop_map(|(e, data)| Payload::CertReq(CertPayload {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(64)).prop_map(|(m, data)| Payload::Auth(AuthPayload {
            method: AuthMethod(m),
            data
        })),
        vec(any::<u8>(), 16..=256).prop_map(Payload::Nonce),
        notify().prop_map(Payload::Notify),
        delete().prop_map(Payload::Delete),
        bytes(40).prop_map(Payload::VendorId),
        ts().prop_map(Payload::TsI),
        ts().prop_map(Payload::TsR),
        cp().prop_map(Payload::Cp),
        eap().prop_map(Payload::Eap),
        unknown().prop_map(Payload::Unknown),
    ]
}

fn first_inner() -> impl Strategy<Value = PayloadType> {
    any::<u8>().prop_map(PayloadType)
}

/// SK or SKF.
pub(crate) fn encrypted_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (first_inner(), bytes(80)).prop_map(|(first_payload, data)| Payload::Sk(SkPayload {
            first_payload,
            data
        })),
        (first_inner(), 1u16..=u16::MAX, any::<u16>(), bytes(80)).prop_map(
            |(first_payload, total, n, data)| Payload::Skf(SkfPayload {
                first_payload,
                fragment_number: 1 + n % total,
                total_fragments: total,
                data
            })
        ),
    ]
}

/// A whole message with finalized header.
pub(crate) fn message() -> impl Strategy<Value = Message> {
    (
        header(),
        vec(clear_payload(), 0..7),
        proptest::option::of(encrypted_payload()),
    )
        .prop_map(|(h, mut payloads, enc)| {
            payloads.extend(enc);
            Message::new(h, payloads).unwrap()
        })
}

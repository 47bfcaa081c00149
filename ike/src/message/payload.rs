//! The IKEv2 payloads (RFC 7296 §3.2–§3.16, RFC 7383 §2.5) and their bodies.
//!
//! Every payload starts with the generic payload header (§3.2):
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # What the decoder checks, and what it ignores
//!
//! Checked (a [`DecodeError`] names payload, offset and reason): every length field
//! against its structure's minimum and against the octets present; counters (Number of
//! Transforms, Number of TSs, Num of SPIs) against the structures present; Last Substruc
//! values of proposals (0/2) and transforms (0/3); the Nonce length (16–256, §3.9); address
//! lengths of IPv4/IPv6 identifications and selectors; SPI sizes of Delete (§3.11); the
//! embedded length of an EAP message (RFC 3748 §4); Fragment Number ≤ Total Fragments
//! (RFC 7383 §2.5).
//!
//! Ignored on receipt, as RFC 7296 requires ("MUST be sent as zero; MUST be ignored on
//! receipt"): the seven RESERVED bits of the generic header, the critical bit of payload
//! types we understand (§3.2), and every RESERVED field inside payload bodies (KE, ID,
//! AUTH, TS, CP, transform and proposal substructures, the R bit of CP attributes).
//! The encoder always writes them as zero, so decode → encode is the identity for every
//! message whose RESERVED fields are zero and whose known payloads have the critical bit
//! clear — which is every conforming message.
//!
//! Traffic selectors of types 7 and 8 map to [`TrafficSelector`]; other TS types (e.g.
//! TS_SECLABEL, RFC 9478) are kept verbatim as [`Selector::Other`] so the state machine can
//! refuse them with TS_UNACCEPTABLE rather than dropping the whole message. An IPv4/IPv6
//! selector whose start is above its end (other than the OPAQUE port range) is a decode
//! error.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::Spi;
use ipsec_core::transform::KeId;
use ipsec_core::ts::{PortRange, TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE, TrafficSelector};

use super::codec::{
    Reader, begin_len16, count_u8, count_u16, finish_len16, put_u8, put_u16, registry,
};
use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::header::PayloadType;
use super::notify::NotifyType;
use super::sa::{ProtocolId, SaPayload};

registry! {
    /// Identification type (RFC 7296 §3.5, RFC 4595, RFC 7619).
    IdType: u8 {
        /// A single four-octet IPv4 address.
        ID_IPV4_ADDR = 1,
        /// A fully-qualified domain name string.
        ID_FQDN = 2,
        /// An RFC 822 email address string.
        ID_RFC822_ADDR = 3,
        /// A single sixteen-octet IPv6 address.
        ID_IPV6_ADDR = 5,
        /// The binary DER encoding of an ASN.1 X.500 Distinguished Name.
        ID_DER_ASN1_DN = 9,
        /// The binary DER encoding of an ASN.1 X.509 GeneralName.
        ID_DER_ASN1_GN = 10,
        /// An opaque octet stream for vendor-specific information.
        ID_KEY_ID = 11,
        /// Fibre Channel name (RFC 4595).
        ID_FC_NAME = 12,
        /// The NULL identity (RFC 7619).
        ID_NULL = 13,
    }
}

registry! {
    /// Certificate encoding (RFC 7296 §3.6, RFC 4806, RFC 7670).
    CertEncoding: u8 {
        /// PKCS #7 wrapped X.509 certificate.
        PKCS7_X509 = 1,
        /// PGP certificate.
        PGP = 2,
        /// DNS signed key.
        DNS_SIGNED_KEY = 3,
        /// X.509 certificate - signature.
        X509_SIGNATURE = 4,
        /// Kerberos token.
        KERBEROS_TOKEN = 6,
        /// Certificate revocation list.
        CRL = 7,
        /// Authority revocation list.
        ARL = 8,
        /// SPKI certificate.
        SPKI = 9,
        /// X.509 certificate - attribute.
        X509_ATTRIBUTE = 10,
        /// Raw RSA key (deprecated).
        RAW_RSA_KEY = 11,
        /// Hash and URL of X.509 certificate.
        HASH_URL_X509_CERT = 12,
        /// Hash and URL of X.509 bundle.
        HASH_URL_X509_BUNDLE = 13,
        /// OCSP content (RFC 4806).
        OCSP_CONTENT = 14,
        /// Raw public key (RFC 7670).
        RAW_PUBLIC_KEY = 15,
    }
}

registry! {
    /// Authentication method (RFC 7296 §3.8, RFC 4754, RFC 7619, RFC 7427).
    AuthMethod: u8 {
        /// RSA digital signature with SHA-1.
        RSA_SIG = 1,
        /// Shared key message integrity code.
        SHARED_KEY_MIC = 2,
        /// DSS digital signature.
        DSS_SIG = 3,
        /// ECDSA with SHA-256 on the P-256 curve (RFC 4754).
        ECDSA_SHA256_P256 = 9,
        /// ECDSA with SHA-384 on the P-384 curve (RFC 4754).
        ECDSA_SHA384_P384 = 10,
        /// ECDSA with SHA-512 on the P-521 curve (RFC 4754).
        ECDSA_SHA512_P521 = 11,
        /// Generic secure password authentication method (RFC 6467).
        GSPAM = 12,
        /// NULL authentication (RFC 7619).
        NULL_AUTH = 13,
        /// Digital signature (RFC 7427).
        DIGITAL_SIGNATURE = 14,
    }
}

registry! {
    /// CFG type of a Configuration payload (RFC 7296 §3.15).
    CfgType: u8 {
        /// CFG_REQUEST.
        CFG_REQUEST = 1,
        /// CFG_REPLY.
        CFG_REPLY = 2,
        /// CFG_SET.
        CFG_SET = 3,
        /// CFG_ACK.
        CFG_ACK = 4,
    }
}

registry! {
    /// Configuration attribute type (RFC 7296 §3.15.1), 15 bits.
    CfgAttrType: u16 {
        /// INTERNAL_IP4_ADDRESS.
        INTERNAL_IP4_ADDRESS = 1,
        /// INTERNAL_IP4_NETMASK.
        INTERNAL_IP4_NETMASK = 2,
        /// INTERNAL_IP4_DNS.
        INTERNAL_IP4_DNS = 3,
        /// INTERNAL_IP4_NBNS.
        INTERNAL_IP4_NBNS = 4,
        /// INTERNAL_IP4_DHCP.
        INTERNAL_IP4_DHCP = 6,
        /// APPLICATION_VERSION.
        APPLICATION_VERSION = 7,
        /// INTERNAL_IP6_ADDRESS.
        INTERNAL_IP6_ADDRESS = 8,
        /// INTERNAL_IP6_DNS.
        INTERNAL_IP6_DNS = 10,
        /// INTERNAL_IP6_DHCP.
        INTERNAL_IP6_DHCP = 12,
        /// INTERNAL_IP4_SUBNET.
        INTERNAL_IP4_SUBNET = 13,
        /// SUPPORTED_ATTRIBUTES.
        SUPPORTED_ATTRIBUTES = 14,
        /// INTERNAL_IP6_SUBNET.
        INTERNAL_IP6_SUBNET = 15,
    }
}

/// Key Exchange payload (§3.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KePayload {
    /// Key exchange method (Diffie-Hellman group) number.
    pub group: KeId,
    /// The public value.
    pub data: Vec<u8>,
}

/// The contents of an IDi or IDr payload (§3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identification {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_FQDN (kept as text; decode rejects non-UTF-8).
    Fqdn(String),
    /// ID_RFC822_ADDR (kept as text; decode rejects non-UTF-8).
    Rfc822(String),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_DER_ASN1_DN: DER of an X.500 Name.
    DerAsn1Dn(Vec<u8>),
    /// ID_DER_ASN1_GN: DER of a GeneralName.
    DerAsn1Gn(Vec<u8>),
    /// ID_KEY_ID: opaque octets.
    KeyId(Vec<u8>),
    /// ID_NULL (RFC 7619): no data.
    Null,
    /// Any other type (never one with a variant above, e.g. ID_FC_NAME), kept verbatim.
    Other {
        /// The ID type.
        id_type: IdType,
        /// Identification data.
        data: Vec<u8>,
    },
}

impl Identification {
    /// The ID Type field.
    pub fn id_type(&self) -> IdType {
        match self {
            Self::Ipv4(_) => IdType::ID_IPV4_ADDR,
            Self::Fqdn(_) => IdType::ID_FQDN,
            Self::Rfc822(_) => IdType::ID_RFC822_ADDR,
            Self::Ipv6(_) => IdType::ID_IPV6_ADDR,
            Self::DerAsn1Dn(_) => IdType::ID_DER_ASN1_DN,
            Self::DerAsn1Gn(_) => IdType::ID_DER_ASN1_GN,
            Self::KeyId(_) => IdType::ID_KEY_ID,
            Self::Null => IdType::ID_NULL,
            Self::Other { id_type, .. } => *id_type,
        }
    }

    /// The Identification Data field.
    pub fn data(&self) -> Cow<'_, [u8]> {
        match self {
            Self::Ipv4(a) => Cow::Owned(a.octets().to_vec()),
            Self::Ipv6(a) => Cow::Owned(a.octets().to_vec()),
            Self::Fqdn(s) | Self::Rfc822(s) => Cow::Borrowed(s.as_bytes()),
            Self::DerAsn1Dn(d) | Self::DerAsn1Gn(d) | Self::KeyId(d) => Cow::Borrowed(d),
            Self::Null => Cow::Borrowed(&[]),
            Self::Other { data, .. } => Cow::Borrowed(data),
        }
    }

    /// The payload body without the generic header — ID Type, three RESERVED octets (zero)
    /// and the data — which is what the AUTH computation signs (§2.15, "RestOfInitIDPayload").
    pub fn auth_octets(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.data().len());
        self.encode_body(&mut v);
        v
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        put_u8(out, self.id_type().0);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.data());
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id_type = IdType(r.u8()?);
        let _reserved = r.bytes(3)?;
        let d_off = r.offset();
        let data = r.rest();
        let text = |data: &[u8]| {
            String::from_utf8(data.to_vec()).map_err(|e| {
                r.err_at(
                    d_off + e.utf8_error().valid_up_to(),
                    DecodeErrorKind::InvalidValue {
                        what: "identification text octet",
                        value: u64::from(
                            data.get(e.utf8_error().valid_up_to()).copied().unwrap_or(0),
                        ),
                    },
                )
            })
        };
        let bad_len = |len: usize| {
            r.err_at(
                d_off,
                DecodeErrorKind::InvalidValue {
                    what: "identification data length",
                    value: len as u64,
                },
            )
        };
        Ok(match id_type {
            IdType::ID_IPV4_ADDR => {
                let a: [u8; 4] = data.try_into().map_err(|_| bad_len(data.len()))?;
                Self::Ipv4(Ipv4Addr::from(a))
            }
            IdType::ID_IPV6_ADDR => {
                let a: [u8; 16] = data.try_into().map_err(|_| bad_len(data.len()))?;
                Self::Ipv6(Ipv6Addr::from(a))
            }
            IdType::ID_FQDN => Self::Fqdn(text(data)?),
            IdType::ID_RFC822_ADDR => Self::Rfc822(text(data)?),
            IdType::ID_DER_ASN1_DN => Self::DerAsn1Dn(data.to_vec()),
            IdType::ID_DER_ASN1_GN => Self::DerAsn1Gn(data.to_vec()),
            IdType::ID_KEY_ID => Self::KeyId(data.to_vec()),
            IdType::ID_NULL => {
                if !data.is_empty() {
                    return Err(bad_len(data.len()));
                }
                Self::Null
            }
            _ => Self::Other {
                id_type,
                data: data.to_vec(),
            },
        })
    }
}

/// Does `ty` have a dedicated [`Identification`] variant (so `Other` must not carry it)?
fn has_variant(ty: IdType) -> bool {
    matches!(
        ty,
        IdType::ID_IPV4_ADDR
            | IdType::ID_FQDN
            | IdType::ID_RFC822_ADDR
            | IdType::ID_IPV6_ADDR
            | IdType::ID_DER_ASN1_DN
            | IdType::ID_DER_ASN1_GN
            | IdType::ID_KEY_ID
            | IdType::ID_NULL
    )
}

/// Certificate (§3.6) or Certificate Request (§3.7) payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertPayload {
    /// Certificate encoding.
    pub encoding: CertEncoding,
    /// Certificate data, or for CERTREQ the Certification Authority field (concatenated
    /// SHA-1 hashes of trusted CAs' public keys for X.509).
    pub data: Vec<u8>,
}

/// Authentication payload (§3.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthPayload {
    /// Auth method.
    pub method: AuthMethod,
    /// Authentication data.
    pub data: Vec<u8>,
}

/// Notify payload (§3.10).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NotifyPayload {
    /// Protocol ID of the SA the notification is about (0 when the SPI is empty; kept as
    /// received, the RFC says to ignore it then).
    pub protocol: ProtocolId,
    /// SPI (empty, or 4 octets for ESP/AH, 8 for IKE).
    pub spi: Vec<u8>,
    /// Notify message type.
    pub ty: NotifyType,
    /// Notification data.
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// A notification without SPI (protocol 0).
    pub fn new(ty: NotifyType, data: Vec<u8>) -> Self {
        Self {
            protocol: ProtocolId(0),
            spi: Vec::new(),
            ty,
            data,
        }
    }

    /// A notification about a Child SA (`REKEY_SA`, `INVALID_SPI`, …).
    pub fn with_spi(ty: NotifyType, protocol: ProtocolId, spi: Spi, data: Vec<u8>) -> Self {
        Self {
            protocol,
            spi: spi.to_bytes().to_vec(),
            ty,
            data,
        }
    }

    /// INVALID_KE_PAYLOAD carrying the group the responder wants (§3.10.1).
    pub fn invalid_ke(group: KeId) -> Self {
        Self::new(
            NotifyType::INVALID_KE_PAYLOAD,
            group.0.to_be_bytes().to_vec(),
        )
    }

    /// SET_WINDOW_SIZE (§2.3).
    pub fn set_window_size(size: u32) -> Self {
        Self::new(NotifyType::SET_WINDOW_SIZE, size.to_be_bytes().to_vec())
    }

    /// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) with the given hash algorithm IDs.
    pub fn signature_hash_algorithms(ids: &[u16]) -> Self {
        Self::new(
            NotifyType::SIGNATURE_HASH_ALGORITHMS,
            ids.iter().flat_map(|i| i.to_be_bytes()).collect(),
        )
    }

    /// The data as one 16-bit value (INVALID_KE_PAYLOAD), if exactly two octets.
    pub fn data_u16(&self) -> Option<u16> {
        Some(u16::from_be_bytes(self.data.as_slice().try_into().ok()?))
    }

    /// The data as one 32-bit value (SET_WINDOW_SIZE), if exactly four octets.
    pub fn data_u32(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.data.as_slice().try_into().ok()?))
    }

    /// The data as a list of 16-bit values (SIGNATURE_HASH_ALGORITHMS), if even-sized.
    pub fn data_u16_list(&self) -> Option<Vec<u16>> {
        if !self.data.len().is_multiple_of(2) {
            return None;
        }
        Some(
            self.data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
        )
    }

    /// The SPI as an ESP/AH SPI, if four octets.
    pub fn child_spi(&self) -> Option<Spi> {
        Some(Spi::from_bytes(self.spi.as_slice().try_into().ok()?))
    }
}

/// Delete payload (§3.11).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeletePayload {
    /// IKE (then `spis` is empty: the IKE SA of the message is meant), ESP or AH.
    pub protocol: ProtocolId,
    /// SPIs of the Child SAs to delete (the sender's inbound SPIs).
    pub spis: Vec<Spi>,
}

/// One traffic selector substructure (§3.13.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE.
    Ip(TrafficSelector),
    /// Any other TS type, kept verbatim (never 7 or 8).
    Other {
        /// TS Type.
        ts_type: u8,
        /// The octet after TS Type (IP Protocol ID for address ranges).
        octet1: u8,
        /// Everything after the Selector Length field.
        data: Vec<u8>,
    },
}

/// Traffic Selector payload, TSi or TSr (§3.13).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TsPayload {
    /// The selectors, in order.
    pub selectors: Vec<Selector>,
}

impl TsPayload {
    /// A payload of IPv4/IPv6 selectors.
    pub fn new(selectors: impl IntoIterator<Item = TrafficSelector>) -> Self {
        Self {
            selectors: selectors.into_iter().map(Selector::Ip).collect(),
        }
    }

    /// The IPv4/IPv6 selectors, skipping other TS types.
    pub fn ip_selectors(&self) -> impl Iterator<Item = &TrafficSelector> {
        self.selectors.iter().filter_map(|s| match s {
            Selector::Ip(ts) => Some(ts),
            Selector::Other { .. } => None,
        })
    }

    /// True if a selector of a type other than 7/8 is present.
    pub fn has_other_types(&self) -> bool {
        self.selectors
            .iter()
            .any(|s| matches!(s, Selector::Other { .. }))
    }
}

/// The Encrypted and Authenticated payload (§3.14), still encrypted.
///
/// Use [`SkCipher`](super::sk::SkCipher) to build and open it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkPayload {
    /// The Next Payload field of the SK header: type of the first inner payload.
    pub first_payload: PayloadType,
    /// Initialization Vector ‖ Encrypted IKE Payloads ‖ Padding ‖ Pad Length ‖ ICV,
    /// exactly as on the wire.
    pub data: Vec<u8>,
}

/// The Encrypted and Authenticated Fragment payload (RFC 7383 §2.5), still encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkfPayload {
    /// Type of the first inner payload in fragment 1, 0 in the others.
    pub first_payload: PayloadType,
    /// Fragment Number, starting at 1.
    pub fragment_number: u16,
    /// Total Fragments.
    pub total_fragments: u16,
    /// IV ‖ encrypted content ‖ padding ‖ pad length ‖ ICV, exactly as on the wire.
    pub data: Vec<u8>,
}

/// One configuration attribute (§3.15.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CfgAttribute {
    /// Attribute type (15 bits; the R bit is ignored on receipt, sent as zero).
    pub ty: CfgAttrType,
    /// Value (empty in a request for "any").
    pub value: Vec<u8>,
}

/// Configuration payload (§3.15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CpPayload {
    /// CFG type.
    pub cfg_type: CfgType,
    /// Attributes in order.
    pub attributes: Vec<CfgAttribute>,
}

/// A payload of a type this implementation does not understand, whose critical bit was
/// clear: skipped by the protocol logic, kept so the message re-encodes identically.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownPayload {
    /// The payload type (from the previous Next Payload field).
    pub ty: PayloadType,
    /// The critical bit (always false after a decode).
    pub critical: bool,
    /// The payload body after the generic header.
    pub data: Vec<u8>,
}

/// One IKEv2 payload (§3.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// Security Association (§3.3).
    Sa(SaPayload),
    /// Key Exchange (§3.4).
    Ke(KePayload),
    /// Identification - Initiator (§3.5).
    IdI(Identification),
    /// Identification - Responder (§3.5).
    IdR(Identification),
    /// Certificate (§3.6).
    Cert(CertPayload),
    /// Certificate Request (§3.7).
    CertReq(CertPayload),
    /// Authentication (§3.8).
    Auth(AuthPayload),
    /// Nonce data, 16 to 256 octets (§3.9).
    Nonce(Vec<u8>),
    /// Notify (§3.10).
    Notify(NotifyPayload),
    /// Delete (§3.11).
    Delete(DeletePayload),
    /// Vendor ID (§3.12).
    VendorId(Vec<u8>),
    /// Traffic Selector - Initiator (§3.13).
    TsI(TsPayload),
    /// Traffic Selector - Responder (§3.13).
    TsR(TsPayload),
    /// Encrypted and Authenticated (§3.14), must be last.
    Sk(SkPayload),
    /// Encrypted and Authenticated Fragment (RFC 7383 §2.5), must be last.
    Skf(SkfPayload),
    /// Configuration (§3.15).
    Cp(CpPayload),
    /// EAP message (§3.16), a complete RFC 3748 packet.
    Eap(Vec<u8>),
    /// A non-critical payload of unknown type.
    Unknown(UnknownPayload),
}

/// Minimum body length (after the generic header) of each known payload type.
fn min_body_len(ty: PayloadType) -> usize {
    match ty {
        PayloadType::SA => 8,
        PayloadType::KE | PayloadType::IDI | PayloadType::IDR | PayloadType::AUTH => 4,
        PayloadType::CERT | PayloadType::CERTREQ => 1,
        PayloadType::NONCE => 16,
        PayloadType::N | PayloadType::D | PayloadType::TSI | PayloadType::TSR => 4,
        PayloadType::CP => 4,
        PayloadType::EAP => 4,
        PayloadType::SKF => 4,
        _ => 0,
    }
}

/// Nonce length bounds (§3.9).
pub const NONCE_MIN_LEN: usize = 16;
/// Nonce length bounds (§3.9).
pub const NONCE_MAX_LEN: usize = 256;

impl Payload {
    /// The payload type, as announced by the previous Next Payload field.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::IdI(_) => PayloadType::IDI,
            Self::IdR(_) => PayloadType::IDR,
            Self::Cert(_) => PayloadType::CERT,
            Self::CertReq(_) => PayloadType::CERTREQ,
            Self::Auth(_) => PayloadType::AUTH,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::N,
            Self::Delete(_) => PayloadType::D,
            Self::VendorId(_) => PayloadType::V,
            Self::TsI(_) => PayloadType::TSI,
            Self::TsR(_) => PayloadType::TSR,
            Self::Sk(_) => PayloadType::SK,
            Self::Skf(_) => PayloadType::SKF,
            Self::Cp(_) => PayloadType::CP,
            Self::Eap(_) => PayloadType::EAP,
            Self::Unknown(u) => u.ty,
        }
    }

    /// True for SK and SKF, which end the payload chain.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Self::Sk(_) | Self::Skf(_))
    }

    /// Decodes one payload body. `r` spans exactly the body; `critical` is the C bit.
    pub(crate) fn decode_body(
        ty: PayloadType,
        critical: bool,
        r: &mut Reader<'_>,
    ) -> Result<Self, DecodeError> {
        let min = min_body_len(ty);
        if r.remaining() < min {
            return Err(r.err_at(
                r.offset().saturating_sub(4),
                DecodeErrorKind::BadLength {
                    what: "payload length",
                    length: r.remaining() + 4,
                    min: min + 4,
                },
            ));
        }
        let p = match ty {
            PayloadType::SA => Self::Sa(SaPayload::decode_body(r)?),
            PayloadType::KE => {
                let group = KeId(r.u16()?);
                let _reserved = r.u16()?;
                Self::Ke(KePayload {
                    group,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::IDI => Self::IdI(Identification::decode_body(r)?),
            PayloadType::IDR => Self::IdR(Identification::decode_body(r)?),
            PayloadType::CERT | PayloadType::CERTREQ => {
                let c = CertPayload {
                    encoding: CertEncoding(r.u8()?),
                    data: r.rest().to_vec(),
                };
                if ty == PayloadType::CERT {
                    Self::Cert(c)
                } else {
                    Self::CertReq(c)
                }
            }
            PayloadType::AUTH => {
                let method = AuthMethod(r.u8()?);
                let _reserved = r.bytes(3)?;
                Self::Auth(AuthPayload {
                    method,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::NONCE => {
                let off = r.offset();
                let n = r.rest();
                if n.len() > NONCE_MAX_LEN {
                    return Err(r.err_at(
                        off,
                        DecodeErrorKind::InvalidValue {
                            what: "nonce length",
                            value: n.len() as u64,
                        },
                    ));
                }
                Self::Nonce(n.to_vec())
            }
            PayloadType::N => {
                let protocol = ProtocolId(r.u8()?);
                let spi_size = r.u8()?;
                let nty = NotifyType(r.u16()?);
                let spi = r.bytes(usize::from(spi_size))?.to_vec();
                Self::Notify(NotifyPayload {
                    protocol,
                    spi,
                    ty: nty,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::D => Self::Delete(decode_delete(r)?),
            PayloadType::V => Self::VendorId(r.rest().to_vec()),
            PayloadType::TSI => Self::TsI(decode_ts(r)?),
            PayloadType::TSR => Self::TsR(decode_ts(r)?),
            PayloadType::SK => {
                // The chain walker supplies `first_payload`.
                Self::Sk(SkPayload {
                    first_payload: PayloadType::NONE,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::SKF => {
                let off = r.offset();
                let fragment_number = r.u16()?;
                let total_fragments = r.u16()?;
                if fragment_number == 0 || fragment_number > total_fragments {
                    return Err(r.err_at(
                        off,
                        DecodeErrorKind::InvalidValue {
                            what: "fragment number",
                            value: u64::from(fragment_number),
                        },
                    ));
                }
                Self::Skf(SkfPayload {
                    first_payload: PayloadType::NONE,
                    fragment_number,
                    total_fragments,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::CP => Self::Cp(decode_cp(r)?),
            PayloadType::EAP => {
                let off = r.offset();
                let m = r.rest();
                let declared = m
                    .get(2..4)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    .unwrap_or(0);
                if declared != m.len() {
                    return Err(r.err_at(
                        off + 2,
                        DecodeErrorKind::LengthMismatch {
                            declared,
                            actual: m.len(),
                        },
                    ));
                }
                Self::Eap(m.to_vec())
            }
            _ => {
                if critical {
                    return Err(r.err_at(
                        r.offset().saturating_sub(4),
                        DecodeErrorKind::UnsupportedCriticalPayload { payload_type: ty },
                    ));
                }
                Self::Unknown(UnknownPayload {
                    ty,
                    critical: false,
                    data: r.rest().to_vec(),
                })
            }
        };
        r.finish("payload body")?;
        Ok(p)
    }

    /// Appends the payload body (without the generic header).
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Sa(sa) => sa.encode_body(out)?,
            Self::Ke(ke) => {
                put_u16(out, ke.group.0);
                put_u16(out, 0);
                out.extend_from_slice(&ke.data);
            }
            Self::IdI(id) | Self::IdR(id) => {
                match id {
                    Identification::Other { id_type, .. } if has_variant(*id_type) => {
                        return Err(EncodeError::InvalidValue {
                            what: "Identification::Other with a known ID type",
                        });
                    }
                    _ => {}
                }
                id.encode_body(out);
            }
            Self::Cert(c) | Self::CertReq(c) => {
                put_u8(out, c.encoding.0);
                out.extend_from_slice(&c.data);
            }
            Self::Auth(a) => {
                put_u8(out, a.method.0);
                out.extend_from_slice(&[0, 0, 0]);
                out.extend_from_slice(&a.data);
            }
            Self::Nonce(n) => {
                if !(NONCE_MIN_LEN..=NONCE_MAX_LEN).contains(&n.len()) {
                    return Err(EncodeError::InvalidValue {
                        what: "nonce length (16..=256)",
                    });
                }
                out.extend_from_slice(n);
            }
            Self::Notify(n) => {
                put_u8(out, n.protocol.0);
                put_u8(out, count_u8(n.spi.len(), "notify SPI octets")?);
                put_u16(out, n.ty.0);
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Self::Delete(d) => {
                let spi_size = if d.protocol == ProtocolId::IKE {
                    if !d.spis.is_empty() {
                        return Err(EncodeError::InvalidValue {
                            what: "Delete of the IKE SA with SPIs",
                        });
                    }
                    0
                } else if d.protocol == ProtocolId::ESP || d.protocol == ProtocolId::AH {
                    4
                } else {
                    return Err(EncodeError::InvalidValue {
                        what: "Delete protocol ID",
                    });
                };
                put_u8(out, d.protocol.0);
                put_u8(out, spi_size);
                put_u16(out, count_u16(d.spis.len(), "Delete SPIs")?);
                for s in &d.spis {
                    out.extend_from_slice(&s.to_bytes());
                }
            }
            Self::VendorId(v) => out.extend_from_slice(v),
            Self::TsI(ts) | Self::TsR(ts) => encode_ts(ts, out)?,
            Self::Sk(sk) => out.extend_from_slice(&sk.data),
            Self::Skf(f) => {
                if f.fragment_number == 0 || f.fragment_number > f.total_fragments {
                    return Err(EncodeError::InvalidValue {
                        what: "fragment number",
                    });
                }
                put_u16(out, f.fragment_number);
                put_u16(out, f.total_fragments);
                out.extend_from_slice(&f.data);
            }
            Self::Cp(cp) => {
                put_u8(out, cp.cfg_type.0);
                out.extend_from_slice(&[0, 0, 0]);
                for a in &cp.attributes {
                    if a.ty.0 > 0x7fff {
                        return Err(EncodeError::InvalidValue {
                            what: "configuration attribute type above 15 bits",
                        });
                    }
                    put_u16(out, a.ty.0);
                    put_u16(
                        out,
                        count_u16(a.value.len(), "configuration attribute octets")?,
                    );
                    out.extend_from_slice(&a.value);
                }
            }
            Self::Eap(m) => {
                let declared = m
                    .get(2..4)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])));
                if declared != Some(m.len()) {
                    return Err(EncodeError::InvalidValue {
                        what: "EAP message length field",
                    });
                }
                out.extend_from_slice(m);
            }
            Self::Unknown(u) => {
                if PayloadType::KNOWN.contains(&u.ty) {
                    return Err(EncodeError::InvalidValue {
                        what: "UnknownPayload with a known payload type",
                    });
                }
                out.extend_from_slice(&u.data);
            }
        }
        Ok(())
    }
}

fn decode_delete(r: &mut Reader<'_>) -> Result<DeletePayload, DecodeError> {
    let off = r.offset();
    let protocol = ProtocolId(r.u8()?);
    let spi_size = r.u8()?;
    let num = usize::from(r.u16()?);
    let expected = match protocol {
        ProtocolId::IKE => 0,
        ProtocolId::ESP | ProtocolId::AH => 4,
        _ => {
            return Err(r.err_at(
                off,
                DecodeErrorKind::InvalidValue {
                    what: "Delete protocol ID",
                    value: u64::from(protocol.0),
                },
            ));
        }
    };
    if spi_size != expected {
        return Err(r.err_at(
            off + 1,
            DecodeErrorKind::InvalidValue {
                what: "Delete SPI size",
                value: u64::from(spi_size),
            },
        ));
    }
    if expected == 0 {
        if num != 0 {
            return Err(r.err_at(
                off + 2,
                DecodeErrorKind::CountMismatch {
                    what: "Num of SPIs of an IKE SA Delete",
                    declared: num,
                    actual: 0,
                },
            ));
        }
        return Ok(DeletePayload {
            protocol,
            spis: Vec::new(),
        });
    }
    if r.remaining() != num * 4 {
        return Err(r.err_at(
            off + 2,
            DecodeErrorKind::CountMismatch {
                what: "Num of SPIs",
                declared: num,
                actual: r.remaining() / 4,
            },
        ));
    }
    let mut spis = Vec::with_capacity(num);
    for _ in 0..num {
        spis.push(Spi::from_bytes(r.array()?));
    }
    Ok(DeletePayload { protocol, spis })
}

fn decode_ts(r: &mut Reader<'_>) -> Result<TsPayload, DecodeError> {
    let n_off = r.offset();
    let num = usize::from(r.u8()?);
    let _reserved = r.bytes(3)?;
    let mut selectors = Vec::new();
    while !r.is_empty() {
        let s_off = r.offset();
        let ts_type = r.u8()?;
        let octet1 = r.u8()?;
        let len = usize::from(r.u16()?);
        let min = match ts_type {
            TS_IPV4_ADDR_RANGE => 16,
            TS_IPV6_ADDR_RANGE => 40,
            _ => 4,
        };
        if len < min
            || (ts_type == TS_IPV4_ADDR_RANGE || ts_type == TS_IPV6_ADDR_RANGE) && len != min
        {
            return Err(r.err_at(
                s_off + 2,
                DecodeErrorKind::BadLength {
                    what: "selector length",
                    length: len,
                    min,
                },
            ));
        }
        let mut s = r.sub(len - 4)?;
        let sel = if ts_type == TS_IPV4_ADDR_RANGE || ts_type == TS_IPV6_ADDR_RANGE {
            let start_port = s.u16()?;
            let end_port = s.u16()?;
            let ports = PortRange::from_wire(start_port, end_port).ok_or_else(|| {
                s.err_at(
                    s_off + 4,
                    DecodeErrorKind::InvalidValue {
                        what: "port range start above end",
                        value: u64::from(start_port),
                    },
                )
            })?;
            let (a, b): (IpAddr, IpAddr) = if ts_type == TS_IPV4_ADDR_RANGE {
                (
                    Ipv4Addr::from(s.array::<4>()?).into(),
                    Ipv4Addr::from(s.array::<4>()?).into(),
                )
            } else {
                (
                    Ipv6Addr::from(s.array::<16>()?).into(),
                    Ipv6Addr::from(s.array::<16>()?).into(),
                )
            };
            let ts = TrafficSelector::new(a, b).map_err(|_| {
                s.err_at(
                    s_off + 8,
                    DecodeErrorKind::InvalidValue {
                        what: "address range start above end",
                        value: 0,
                    },
                )
            })?;
            Selector::Ip(ts.with_protocol(octet1, ports))
        } else {
            Selector::Other {
                ts_type,
                octet1,
                data: s.rest().to_vec(),
            }
        };
        s.finish("traffic selector")?;
        selectors.push(sel);
    }
    if selectors.len() != num {
        return Err(r.err_at(
            n_off,
            DecodeErrorKind::CountMismatch {
                what: "Number of TSs",
                declared: num,
                actual: selectors.len(),
            },
        ));
    }
    Ok(TsPayload { selectors })
}

fn encode_ts(ts: &TsPayload, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    put_u8(out, count_u8(ts.selectors.len(), "traffic selectors")?);
    out.extend_from_slice(&[0, 0, 0]);
    for sel in &ts.selectors {
        let start = out.len();
        match sel {
            Selector::Ip(t) => {
                put_u8(out, t.ts_type());
                put_u8(out, t.ip_protocol);
                let at = begin_len16(out);
                let (a, b) = t.ports.to_wire();
                put_u16(out, a);
                put_u16(out, b);
                for addr in [t.start(), t.end()] {
                    match addr {
                        IpAddr::V4(v) => out.extend_from_slice(&v.octets()),
                        IpAddr::V6(v) => out.extend_from_slice(&v.octets()),
                    }
                }
                finish_len16(out, start, at, "traffic selector")?;
            }
            Selector::Other {
                ts_type,
                octet1,
                data,
            } => {
                if *ts_type == TS_IPV4_ADDR_RANGE || *ts_type == TS_IPV6_ADDR_RANGE {
                    return Err(EncodeError::InvalidValue {
                        what: "Selector::Other with an address range TS type",
                    });
                }
                put_u8(out, *ts_type);
                put_u8(out, *octet1);
                let at = begin_len16(out);
                out.extend_from_slice(data);
                finish_len16(out, start, at, "traffic selector")?;
            }
        }
    }
    Ok(())
}

fn decode_cp(r: &mut Reader<'_>) -> Result<CpPayload, DecodeError> {
    let cfg_type = CfgType(r.u8()?);
    let _reserved = r.bytes(3)?;
    let mut attributes = Vec::new();
    while !r.is_empty() {
        // The R bit (top bit of the type) is reserved: ignored on receipt.
        let ty = CfgAttrType(r.u16()? & 0x7fff);
        let len = usize::from(r.u16()?);
        let value = r.bytes(len)?.to_vec();
        attributes.push(CfgAttribute { ty, value });
    }
    Ok(CpPayload {
        cfg_type,
        attributes,
    })
}

//! Security Association payload contents (RFC 7296 §3.3): proposals, transforms and
//! transform attributes.
//!
//! These are the wire-level values. Negotiation (choosing among them) lives in
//! `crate::proposal`; encoding and decoding are at the end of this file.
//!
//! Decoding checks every length, the Number of Transforms, and the Last Substruc values
//! (0 or 2 for proposals, 0 or 3 for transforms, §3.3.1/§3.3.2); RESERVED octets are
//! ignored. Transform attributes (§3.3.5): the only attribute defined, Key Length (type
//! 14), is read into [`Transform::key_length`] when it is the transform's only attribute and
//! uses the TV format. Any other attribute list (unknown types, TLV format, a repeated Key
//! Length) is kept verbatim in [`Transform::other_attributes`], so decoding and encoding stay
//! exact inverses; negotiation rejects such a proposal, as RFC 7296 §3.3.6 requires.

use ipsec_core::transform::{ATTR_KEY_LENGTH, TransformType};

use super::codec::{Reader, begin_len16, count_u8, finish_len16, put_u8, put_u16};
use super::error::{DecodeError, DecodeErrorKind, EncodeError};

/// Protocol ID of a proposal (RFC 7296 §3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolId(pub u8);

impl ProtocolId {
    /// IKE SA.
    pub const IKE: Self = Self(1);
    /// AH Child SA.
    pub const AH: Self = Self(2);
    /// ESP Child SA.
    pub const ESP: Self = Self(3);
}

/// One transform substructure (RFC 7296 §3.3.2) with its attributes (§3.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transform {
    /// Transform type (ENCR, PRF, INTEG, KE, ESN).
    pub ty: TransformType,
    /// Transform ID within the type (see `ipsec_core::transform`).
    pub id: u16,
    /// The Key Length attribute (type 14, TV format) in bits, if it is the only attribute.
    pub key_length: Option<u16>,
    /// Any other attribute list, verbatim (empty normally). A transform with attributes
    /// this implementation does not understand makes its proposal unacceptable (§3.3.6).
    pub other_attributes: Vec<u8>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(ty: TransformType, id: u16) -> Self {
        Self {
            ty,
            id,
            key_length: None,
            other_attributes: Vec::new(),
        }
    }

    /// A transform with a Key Length attribute.
    pub fn with_key_length(ty: TransformType, id: u16, bits: u16) -> Self {
        Self {
            ty,
            id,
            key_length: Some(bits),
            other_attributes: Vec::new(),
        }
    }
}

/// One proposal substructure (RFC 7296 §3.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// Proposal number: 1 for the first, incrementing (§3.3.1); the responder echoes the
    /// number of the proposal it accepted.
    pub num: u8,
    /// IKE, AH or ESP.
    pub protocol: ProtocolId,
    /// SPI: empty in an initial IKE_SA_INIT, 8 octets when rekeying an IKE SA, 4 for ESP/AH.
    pub spi: Vec<u8>,
    /// Transforms, in the sender's preference order within each type.
    pub transforms: Vec<Transform>,
}

/// The SA payload: proposals in preference order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SaPayload {
    /// Proposals.
    pub proposals: Vec<Proposal>,
}

/// Last Substruc value of a proposal followed by another one (§3.3.1).
const MORE_PROPOSALS: u8 = 2;
/// Last Substruc value of a transform followed by another one (§3.3.2).
const MORE_TRANSFORMS: u8 = 3;
/// Attribute Format bit: TV when set (§3.3.5).
const AF_TV: u16 = 0x8000;

impl SaPayload {
    /// An SA payload with the given proposals.
    pub fn new(proposals: Vec<Proposal>) -> Self {
        Self { proposals }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut proposals = Vec::new();
        while !r.is_empty() {
            let p_off = r.offset();
            let last = r.u8()?;
            let _reserved = r.u8()?;
            let len = usize::from(r.u16()?);
            if len < 8 {
                return Err(r.err_at(
                    p_off + 2,
                    DecodeErrorKind::BadLength {
                        what: "proposal length",
                        length: len,
                        min: 8,
                    },
                ));
            }
            let mut p = r.sub(len - 4)?;
            let expected_last = if r.is_empty() { 0 } else { MORE_PROPOSALS };
            if last != expected_last {
                return Err(r.err_at(
                    p_off,
                    DecodeErrorKind::InvalidValue {
                        what: "proposal Last Substruc",
                        value: u64::from(last),
                    },
                ));
            }
            let num = p.u8()?;
            let protocol = ProtocolId(p.u8()?);
            let spi_size = usize::from(p.u8()?);
            let n_off = p.offset();
            let num_transforms = usize::from(p.u8()?);
            let spi = p.bytes(spi_size)?.to_vec();
            let mut transforms = Vec::new();
            while !p.is_empty() {
                transforms.push(decode_transform(&mut p)?);
            }
            if transforms.len() != num_transforms {
                return Err(p.err_at(
                    n_off,
                    DecodeErrorKind::CountMismatch {
                        what: "Number of Transforms",
                        declared: num_transforms,
                        actual: transforms.len(),
                    },
                ));
            }
            proposals.push(Proposal {
                num,
                protocol,
                spi,
                transforms,
            });
        }
        if proposals.is_empty() {
            return Err(r.err_at(
                r.offset(),
                DecodeErrorKind::InvalidValue {
                    what: "SA payload without proposals",
                    value: 0,
                },
            ));
        }
        Ok(Self { proposals })
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.proposals.is_empty() {
            return Err(EncodeError::InvalidValue {
                what: "SA payload without proposals",
            });
        }
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            let start = out.len();
            put_u8(out, if i + 1 == n { 0 } else { MORE_PROPOSALS });
            put_u8(out, 0);
            let at = begin_len16(out);
            put_u8(out, p.num);
            put_u8(out, p.protocol.0);
            put_u8(out, count_u8(p.spi.len(), "proposal SPI octets")?);
            put_u8(out, count_u8(p.transforms.len(), "transforms")?);
            out.extend_from_slice(&p.spi);
            let m = p.transforms.len();
            for (j, t) in p.transforms.iter().enumerate() {
                let tstart = out.len();
                put_u8(out, if j + 1 == m { 0 } else { MORE_TRANSFORMS });
                put_u8(out, 0);
                let tat = begin_len16(out);
                put_u8(out, t.ty.0);
                put_u8(out, 0);
                put_u16(out, t.id);
                if let Some(bits) = t.key_length {
                    if !t.other_attributes.is_empty() {
                        return Err(EncodeError::InvalidValue {
                            what: "transform with both key_length and other_attributes",
                        });
                    }
                    put_u16(out, AF_TV | ATTR_KEY_LENGTH);
                    put_u16(out, bits);
                }
                out.extend_from_slice(&t.other_attributes);
                finish_len16(out, tstart, tat, "transform")?;
            }
            finish_len16(out, start, at, "proposal")?;
        }
        Ok(())
    }
}

/// Decodes one transform.
fn decode_transform(p: &mut Reader<'_>) -> Result<Transform, DecodeError> {
    let t_off = p.offset();
    let last = p.u8()?;
    let _reserved = p.u8()?;
    let len = usize::from(p.u16()?);
    if len < 8 {
        return Err(p.err_at(
            t_off + 2,
            DecodeErrorKind::BadLength {
                what: "transform length",
                length: len,
                min: 8,
            },
        ));
    }
    let mut t = p.sub(len - 4)?;
    let expected_last = if p.is_empty() { 0 } else { MORE_TRANSFORMS };
    if last != expected_last {
        return Err(p.err_at(
            t_off,
            DecodeErrorKind::InvalidValue {
                what: "transform Last Substruc",
                value: u64::from(last),
            },
        ));
    }
    let ty = TransformType(t.u8()?);
    let _reserved = t.u8()?;
    let id = t.u16()?;
    // Parse a copy of the attribute list (to validate its lengths); keep the octets.
    let mut a = t.clone();
    let attrs = t.rest();
    let t = &mut a;
    let mut count = 0;
    let mut key_length = None;
    while !t.is_empty() {
        count += 1;
        let af_type = t.u16()?;
        if af_type & AF_TV != 0 {
            let value = t.u16()?;
            if af_type & !AF_TV == ATTR_KEY_LENGTH {
                key_length = Some(value);
            }
        } else {
            let alen = usize::from(t.u16()?);
            let _value = t.bytes(alen)?;
        }
    }
    Ok(if count == 1 && key_length.is_some() {
        Transform {
            ty,
            id,
            key_length,
            other_attributes: Vec::new(),
        }
    } else if count == 0 {
        Transform {
            ty,
            id,
            key_length: None,
            other_attributes: Vec::new(),
        }
    } else {
        Transform {
            ty,
            id,
            key_length: None,
            other_attributes: attrs.to_vec(),
        }
    })
}

impl Proposal {
    /// A proposal with the given number, protocol, SPI and transforms.
    pub fn new(num: u8, protocol: ProtocolId, spi: Vec<u8>, transforms: Vec<Transform>) -> Self {
        Self {
            num,
            protocol,
            spi,
            transforms,
        }
    }
}

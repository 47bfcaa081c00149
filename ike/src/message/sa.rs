//! Security Association payload contents (RFC 7296 §3.3): proposals, transforms and
//! transform attributes.
//!
//! These are the wire-level values. Negotiation (choosing among them) lives in
//! [`crate::proposal`]; encoding and decoding in this module's codec.

use ipsec_core::transform::TransformType;

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
    /// The Key Length attribute (type 14, TV format) in bits, if present.
    pub key_length: Option<u16>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(ty: TransformType, id: u16) -> Self {
        Self { ty, id, key_length: None }
    }

    /// A transform with a Key Length attribute.
    pub fn with_key_length(ty: TransformType, id: u16, bits: u16) -> Self {
        Self { ty, id, key_length: Some(bits) }
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

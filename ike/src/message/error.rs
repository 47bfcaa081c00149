//! Decode and encode errors of the IKEv2 codec (RFC 7296 §3, §2.21).
//!
//! A [`DecodeError`] says *where* (absolute octet offset in the message and the payload
//! being decoded) and *what* ([`DecodeErrorKind`]). [`DecodeError::notify`] maps it to the
//! notification RFC 7296 §2.21 / §2.5 suggests answering with; whether to answer at all
//! (unauthenticated messages are normally dropped silently) is the caller's decision.

use core::fmt;

use super::header::PayloadType;
use super::notify::NotifyType;

/// What was wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A structure needed `needed` more octets but only `available` were left.
    Truncated {
        /// Octets the field or structure needs.
        needed: usize,
        /// Octets left in the enclosing structure.
        available: usize,
    },
    /// The IKE header Length field differs from the length of the datagram.
    LengthMismatch {
        /// Length field of the IKE header.
        declared: usize,
        /// Octets actually received.
        actual: usize,
    },
    /// A payload or substructure length field is below the structure's minimum size.
    BadLength {
        /// Which length field.
        what: &'static str,
        /// Its value.
        length: usize,
        /// Smallest acceptable value.
        min: usize,
    },
    /// The major version is higher than 2: answer with INVALID_MAJOR_VERSION (§2.5).
    HigherMajorVersion {
        /// Major version received.
        major: u8,
        /// Minor version received.
        minor: u8,
    },
    /// A major version below 2 (IKEv1 or garbage): drop silently.
    UnsupportedVersion {
        /// Major version received.
        major: u8,
        /// Minor version received.
        minor: u8,
    },
    /// A payload type this implementation does not know, with the critical bit set
    /// (§2.5): answer with UNSUPPORTED_CRITICAL_PAYLOAD carrying the type.
    UnsupportedCriticalPayload {
        /// The payload type.
        payload_type: PayloadType,
    },
    /// Octets left over after a structure (or after the last payload of the chain).
    TrailingData {
        /// The structure that should have ended.
        what: &'static str,
        /// Octets left over.
        len: usize,
    },
    /// An Encrypted (SK) or Encrypted Fragment (SKF) payload is not the last payload
    /// (§3.14, RFC 7383 §2.5). This also covers a second SK payload.
    EncryptedNotLast,
    /// An SK or SKF payload inside decrypted content.
    NestedEncrypted,
    /// A counter field disagrees with the number of structures present.
    CountMismatch {
        /// Which counter.
        what: &'static str,
        /// Value of the field.
        declared: usize,
        /// Structures actually present.
        actual: usize,
    },
    /// A field has a value the RFC forbids.
    InvalidValue {
        /// Which field.
        what: &'static str,
        /// The value, widened.
        value: u64,
    },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} octets, {available} left")
            }
            Self::LengthMismatch { declared, actual } => write!(
                f,
                "IKE header length {declared} does not match the {actual} octets received"
            ),
            Self::BadLength { what, length, min } => {
                write!(f, "{what} {length} is below the minimum {min}")
            }
            Self::HigherMajorVersion { major, minor } => {
                write!(f, "unsupported higher major version {major}.{minor}")
            }
            Self::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported version {major}.{minor}")
            }
            Self::UnsupportedCriticalPayload { payload_type } => {
                write!(f, "unsupported critical payload type {}", payload_type.0)
            }
            Self::TrailingData { what, len } => {
                write!(f, "{len} unexpected octets after the {what}")
            }
            Self::EncryptedNotLast => f.write_str("encrypted payload is not the last payload"),
            Self::NestedEncrypted => f.write_str("encrypted payload inside encrypted content"),
            Self::CountMismatch {
                what,
                declared,
                actual,
            } => write!(f, "{what} says {declared} but {actual} are present"),
            Self::InvalidValue { what, value } => write!(f, "invalid {what} {value}"),
        }
    }
}

/// A message that could not be decoded: what, where, and in which payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// Absolute octet offset within the IKE message (0 = first octet of the IKE header).
    pub offset: usize,
    /// The payload being decoded, `None` for the IKE header.
    pub payload: Option<PayloadType>,
}

impl DecodeError {
    /// The notification RFC 7296 suggests for this error, with its notification data:
    /// INVALID_MAJOR_VERSION (§2.5), UNSUPPORTED_CRITICAL_PAYLOAD with the one-octet
    /// payload type (§3.10.1), INVALID_SYNTAX otherwise. `None` for a lower major version,
    /// which is dropped without answer.
    pub fn notify(&self) -> Option<(NotifyType, Vec<u8>)> {
        match self.kind {
            DecodeErrorKind::HigherMajorVersion { .. } => {
                Some((NotifyType::INVALID_MAJOR_VERSION, Vec::new()))
            }
            DecodeErrorKind::UnsupportedVersion { .. } => None,
            DecodeErrorKind::UnsupportedCriticalPayload { payload_type } => Some((
                NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD,
                vec![payload_type.0],
            )),
            _ => Some((NotifyType::INVALID_SYNTAX, Vec::new())),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.payload {
            Some(p) => write!(f, "{p} payload at offset {}: {}", self.offset, self.kind),
            None => write!(f, "IKE header at offset {}: {}", self.offset, self.kind),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A message that cannot be represented on the wire (a caller mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A length does not fit its field.
    #[error("{what} of {len} octets exceeds the maximum {max}")]
    TooLong {
        /// Which structure.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The field's maximum.
        max: usize,
    },
    /// A count does not fit its field.
    #[error("{count} {what} exceed the maximum {max}")]
    TooMany {
        /// Which structures.
        what: &'static str,
        /// How many.
        count: usize,
        /// The field's maximum.
        max: usize,
    },
    /// An SK or SKF payload that is not the last one.
    #[error("encrypted payload must be the last payload")]
    EncryptedNotLast,
    /// A value the RFC forbids or this codec would reject on decode.
    #[error("invalid {what}")]
    InvalidValue {
        /// What was invalid.
        what: &'static str,
    },
}

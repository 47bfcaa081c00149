//! IKEv2 messages (RFC 7296 §3): the wire codec.
//!
//! * [`header`] — the IKE header (§3.1), payload and exchange types.
//! * [`payload`] — every payload body (§3.2–§3.16) and the [`Payload`] enum.
//! * [`sa`] — the SA payload (§3.3): proposals, transforms, attributes.
//! * [`notify`] — the Notify Message Type registry (§3.10.1).
//! * [`sk`] — protection of the Encrypted payload (§3.14, RFC 5282, RFC 7634).
//! * [`fragment`] — the Encrypted Fragment payload and reassembly (RFC 7383).
//! * [`error`] — structured decode and encode errors.
//!
//! [`Message::decode`] is strict and total: any input yields a message or a
//! [`DecodeError`], never a panic, with allocation bounded by the input length. It walks the
//! payload chain iteratively (no recursion), skips (and keeps) unknown payloads whose
//! critical bit is clear, and rejects unknown critical ones with
//! [`DecodeErrorKind::UnsupportedCriticalPayload`]. [`Message::encode`] computes every
//! Next Payload and Length field itself.
//!
//! ```
//! use ike::message::{Message, Payload, NotifyPayload, NotifyType};
//! use ike::message::header::{ExchangeType, Flags, IkeHeader};
//! use ipsec_core::IkeSpi;
//!
//! let header = IkeHeader::new(IkeSpi([1; 8]), IkeSpi::ZERO, ExchangeType::IKE_SA_INIT,
//!                             Flags::new(true, false), 0);
//! let msg = Message::new(header, vec![
//!     Payload::Nonce(vec![7; 32]),
//!     Payload::Notify(NotifyPayload::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, vec![])),
//! ]).unwrap();
//! let bytes = msg.to_bytes().unwrap();
//! assert_eq!(Message::decode(&bytes).unwrap(), msg);
//! ```

mod codec;
pub mod error;
pub mod fragment;
pub mod header;
pub mod notify;
pub mod payload;
pub mod sa;
pub mod sk;

#[cfg(test)]
mod tests;

pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use fragment::{Fragment, FragmentReassembler, ReassemblyError, ReassemblyLimits};
pub use header::{ExchangeType, Flags, IKE_HEADER_LEN, IkeHeader, PayloadType};
pub use notify::NotifyType;
pub use payload::{
    AuthMethod, AuthPayload, CertEncoding, CertPayload, CfgAttrType, CfgAttribute, CfgType,
    CpPayload, DeletePayload, IdType, Identification, KePayload, NotifyPayload, Payload, Selector,
    SkPayload, SkfPayload, TsPayload, UnknownPayload,
};
pub use sa::{Proposal, ProtocolId, SaPayload, Transform};
pub use sk::{OpenedMessage, SkCipher, SkError, SkTransform};

use codec::{Reader, begin_len16, finish_len16, put_u8};
use header::GENERIC_PAYLOAD_HEADER_LEN;

/// An IKEv2 message: header and payloads in wire order.
///
/// An [`Payload::Sk`] or [`Payload::Skf`] payload, if present, is the last one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The IKE header.
    pub header: IkeHeader,
    /// The payloads, in order.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// A message whose header Next Payload and Length fields are filled in.
    pub fn new(header: IkeHeader, payloads: Vec<Payload>) -> Result<Self, EncodeError> {
        let mut m = Self { header, payloads };
        m.finalize()?;
        Ok(m)
    }

    /// Decodes a whole IKE message (exactly one datagram's payload, without the non-ESP
    /// marker of port 4500). Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header = IkeHeader::decode(bytes)?;
        let mut r = Reader::new(bytes, 0, None);
        let _ = r.bytes(IKE_HEADER_LEN)?;
        let payloads = decode_chain(&mut r, header.next_payload, true)?;
        Ok(Self { header, payloads })
    }

    /// Appends the encoded message to `out`, computing the Next Payload chain and every
    /// Length field (the header's `next_payload` and `length` are not read).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        self.header.write(PayloadType::NONE, 0, out);
        let first = encode_chain(&self.payloads, out)?;
        patch_header(out, start, first)
    }

    /// The encoded message as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Writes the Next Payload and Length values [`Message::encode`] would produce into
    /// the header, so that `Message::decode(&m.to_bytes()?)? == m` holds.
    pub fn finalize(&mut self) -> Result<(), EncodeError> {
        let bytes = self.to_bytes()?;
        let h = IkeHeader::decode(&bytes).map_err(|_| EncodeError::InvalidValue {
            what: "IKE header (version must be 2)",
        })?;
        self.header.next_payload = h.next_payload;
        self.header.length = h.length;
        Ok(())
    }

    /// The Encrypted payload, if the message has one.
    pub fn sk(&self) -> Option<&SkPayload> {
        match self.payloads.last() {
            Some(Payload::Sk(sk)) => Some(sk),
            _ => None,
        }
    }

    /// The Encrypted Fragment payload, if the message has one.
    pub fn skf(&self) -> Option<&SkfPayload> {
        match self.payloads.last() {
            Some(Payload::Skf(f)) => Some(f),
            _ => None,
        }
    }

    /// The Notify payloads, in order.
    pub fn notifies(&self) -> impl Iterator<Item = &NotifyPayload> {
        notifies(&self.payloads)
    }
}

/// The Notify payloads among `payloads`, in order.
pub fn notifies(payloads: &[Payload]) -> impl Iterator<Item = &NotifyPayload> {
    payloads.iter().filter_map(|p| match p {
        Payload::Notify(n) => Some(n),
        _ => None,
    })
}

/// Patches Next Payload and Length of the IKE header that starts at `start`.
pub(crate) fn patch_header(
    out: &mut [u8],
    start: usize,
    first: PayloadType,
) -> Result<(), EncodeError> {
    let len = out.len() - start;
    let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLong {
        what: "IKE message",
        len,
        max: u32::MAX as usize,
    })?;
    if let Some(b) = out.get_mut(start + 16) {
        *b = first.0;
    }
    if let Some(slot) = out.get_mut(start + 24..start + 28) {
        slot.copy_from_slice(&len32.to_be_bytes());
    }
    Ok(())
}

/// Encodes a payload chain; returns the type of the first payload (or NONE).
///
/// The Next Payload field of an SK/SKF payload is its `first_payload`; such a payload
/// must be last.
pub(crate) fn encode_chain(
    payloads: &[Payload],
    out: &mut Vec<u8>,
) -> Result<PayloadType, EncodeError> {
    for (i, p) in payloads.iter().enumerate() {
        let is_last = i + 1 == payloads.len();
        let next = match p {
            Payload::Sk(sk) => {
                if !is_last {
                    return Err(EncodeError::EncryptedNotLast);
                }
                sk.first_payload
            }
            Payload::Skf(f) => {
                if !is_last {
                    return Err(EncodeError::EncryptedNotLast);
                }
                f.first_payload
            }
            _ => payloads
                .get(i + 1)
                .map_or(PayloadType::NONE, Payload::payload_type),
        };
        let start = out.len();
        put_u8(out, next.0);
        let critical = matches!(p, Payload::Unknown(u) if u.critical);
        put_u8(out, if critical { 0x80 } else { 0 });
        let at = begin_len16(out);
        p.encode_body(out)?;
        finish_len16(out, start, at, "payload")?;
    }
    Ok(payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type))
}

/// Decodes a payload chain that starts with a payload of type `first` and must fill `r`
/// exactly. Iterative; allocation is bounded by the input (every payload is ≥ 4 octets).
pub(crate) fn decode_chain(
    r: &mut Reader<'_>,
    first: PayloadType,
    allow_encrypted: bool,
) -> Result<Vec<Payload>, DecodeError> {
    let mut out = Vec::new();
    let mut ty = first;
    while ty != PayloadType::NONE {
        let start = r.offset();
        let mut h = r.sub_ctx(GENERIC_PAYLOAD_HEADER_LEN, Some(ty))?;
        let next = PayloadType(h.u8()?);
        let critical = h.u8()? & 0x80 != 0;
        let len = usize::from(h.u16()?);
        if len < GENERIC_PAYLOAD_HEADER_LEN {
            return Err(h.err_at(
                start + 2,
                DecodeErrorKind::BadLength {
                    what: "payload length",
                    length: len,
                    min: GENERIC_PAYLOAD_HEADER_LEN,
                },
            ));
        }
        let mut body = r.sub_ctx(len - GENERIC_PAYLOAD_HEADER_LEN, Some(ty))?;
        let mut p = Payload::decode_body(ty, critical, &mut body)?;
        match &mut p {
            Payload::Sk(SkPayload { first_payload, .. })
            | Payload::Skf(SkfPayload { first_payload, .. }) => {
                if !allow_encrypted {
                    return Err(body.err_at(start, DecodeErrorKind::NestedEncrypted));
                }
                *first_payload = next;
                if !r.is_empty() {
                    return Err(body.err_at(start, DecodeErrorKind::EncryptedNotLast));
                }
                out.push(p);
                return Ok(out);
            }
            _ => {}
        }
        out.push(p);
        ty = next;
    }
    r.finish("last payload")?;
    Ok(out)
}

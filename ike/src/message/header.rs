//! The IKE header (RFC 7296 §3.1) and the payload type registry (§3.2, RFC 7383 §2.5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Initiator's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Responder's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Message ID                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            Length                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Receipt rules implemented here: the major version must be 2 (a higher one is
//! [`DecodeErrorKind::HigherMajorVersion`], a lower one
//! [`DecodeErrorKind::UnsupportedVersion`]); the minor version is kept but otherwise ignored
//! (§3.1 "MUST ignore the minor version number of received messages"); the flags octet is
//! kept verbatim, its unused X bits are ignored (§3.1 "MUST be ignored on receipt"); the
//! Length field must equal the number of octets received.

use ipsec_core::IkeSpi;

use super::codec::{Reader, put_u8, put_u32, registry};
use super::error::{DecodeError, DecodeErrorKind};

/// Size of the IKE header in octets.
pub const IKE_HEADER_LEN: usize = 28;
/// Size of the generic payload header in octets (§3.2).
pub const GENERIC_PAYLOAD_HEADER_LEN: usize = 4;

registry! {
    /// Payload type, the value of a Next Payload field (RFC 7296 §3.2, RFC 7383 §2.5).
    PayloadType: u8 {
        /// No Next Payload.
        NONE = 0,
        /// Security Association (§3.3).
        SA = 33,
        /// Key Exchange (§3.4).
        KE = 34,
        /// Identification - Initiator (§3.5).
        IDI = 35,
        /// Identification - Responder (§3.5).
        IDR = 36,
        /// Certificate (§3.6).
        CERT = 37,
        /// Certificate Request (§3.7).
        CERTREQ = 38,
        /// Authentication (§3.8).
        AUTH = 39,
        /// Nonce (§3.9).
        NONCE = 40,
        /// Notify (§3.10).
        N = 41,
        /// Delete (§3.11).
        D = 42,
        /// Vendor ID (§3.12).
        V = 43,
        /// Traffic Selector - Initiator (§3.13).
        TSI = 44,
        /// Traffic Selector - Responder (§3.13).
        TSR = 45,
        /// Encrypted and Authenticated (§3.14).
        SK = 46,
        /// Configuration (§3.15).
        CP = 47,
        /// Extensible Authentication (§3.16).
        EAP = 48,
        /// Encrypted and Authenticated Fragment (RFC 7383 §2.5).
        SKF = 53,
    }
}

registry! {
    /// Exchange type (RFC 7296 §3.1). Unknown values are kept.
    ExchangeType: u8 {
        /// IKE_SA_INIT.
        IKE_SA_INIT = 34,
        /// IKE_AUTH.
        IKE_AUTH = 35,
        /// CREATE_CHILD_SA.
        CREATE_CHILD_SA = 36,
        /// INFORMATIONAL.
        INFORMATIONAL = 37,
        /// IKE_SESSION_RESUME (RFC 5723).
        IKE_SESSION_RESUME = 38,
        /// IKE_INTERMEDIATE (RFC 9242).
        IKE_INTERMEDIATE = 43,
        /// IKE_FOLLOWUP_KE (RFC 9370).
        IKE_FOLLOWUP_KE = 44,
    }
}

/// The flags octet of the IKE header (§3.1), kept verbatim.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// I(nitiator): set in messages sent by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// V(ersion): the sender can speak a higher major version; never set by IKEv2.
    pub const VERSION: u8 = 0x10;
    /// R(esponse): this message is a response.
    pub const RESPONSE: u8 = 0x20;

    /// Flags of a message from the original initiator (`initiator`) that is or is not a
    /// response.
    pub fn new(initiator: bool, response: bool) -> Self {
        let mut f = 0;
        if initiator {
            f |= Self::INITIATOR;
        }
        if response {
            f |= Self::RESPONSE;
        }
        Self(f)
    }

    /// The I bit.
    pub fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    /// The R bit.
    pub fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// The V bit.
    pub fn version(self) -> bool {
        self.0 & Self::VERSION != 0
    }
}

impl core::fmt::Debug for Flags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Flags({:#04x}", self.0)?;
        if self.initiator() {
            f.write_str(" I")?;
        }
        if self.version() {
            f.write_str(" V")?;
        }
        if self.response() {
            f.write_str(" R")?;
        }
        f.write_str(")")
    }
}

/// The IKE header (RFC 7296 §3.1).
///
/// `next_payload` and `length` are the wire values after a decode; when encoding a
/// [`Message`](super::Message) they are computed from the payloads and these fields are
/// ignored ([`Message::finalize`](super::Message::finalize) writes them back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeHeader {
    /// IKE SA Initiator's SPI.
    pub spi_i: IkeSpi,
    /// IKE SA Responder's SPI (zero in the first IKE_SA_INIT request).
    pub spi_r: IkeSpi,
    /// Type of the first payload.
    pub next_payload: PayloadType,
    /// Major version (2).
    pub major_version: u8,
    /// Minor version (sent as 0, ignored on receipt).
    pub minor_version: u8,
    /// Exchange type.
    pub exchange_type: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
    /// Length of the whole message, header included.
    pub length: u32,
}

impl IkeHeader {
    /// A version 2.0 header; `next_payload` and `length` are filled in when encoding.
    pub fn new(
        spi_i: IkeSpi,
        spi_r: IkeSpi,
        exchange_type: ExchangeType,
        flags: Flags,
        message_id: u32,
    ) -> Self {
        Self {
            spi_i,
            spi_r,
            next_payload: PayloadType::NONE,
            major_version: 2,
            minor_version: 0,
            exchange_type,
            flags,
            message_id,
            length: 0,
        }
    }

    /// Decodes and checks the header of a whole datagram (`msg` is the complete IKE
    /// message, without the non-ESP marker). Cheap enough for SPI demultiplexing before
    /// any payload is looked at.
    pub fn decode(msg: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(msg, 0, None);
        let h = Self::read(&mut r)?;
        let declared = h.length as usize;
        if declared != msg.len() {
            return Err(DecodeError {
                kind: DecodeErrorKind::LengthMismatch {
                    declared,
                    actual: msg.len(),
                },
                offset: 24,
                payload: None,
            });
        }
        Ok(h)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let spi_i = IkeSpi(r.array()?);
        let spi_r = IkeSpi(r.array()?);
        let next_payload = PayloadType(r.u8()?);
        let v_off = r.offset();
        let v = r.u8()?;
        let (major, minor) = (v >> 4, v & 0x0f);
        let exchange_type = ExchangeType(r.u8()?);
        let flags = Flags(r.u8()?);
        let message_id = r.u32()?;
        let length = r.u32()?;
        if major > 2 {
            return Err(r.err_at(v_off, DecodeErrorKind::HigherMajorVersion { major, minor }));
        }
        if major < 2 {
            return Err(r.err_at(v_off, DecodeErrorKind::UnsupportedVersion { major, minor }));
        }
        Ok(Self {
            spi_i,
            spi_r,
            next_payload,
            major_version: major,
            minor_version: minor,
            exchange_type,
            flags,
            message_id,
            length,
        })
    }

    /// Appends the 28-octet header with the given Next Payload and Length.
    pub(crate) fn write(&self, next_payload: PayloadType, length: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.0);
        out.extend_from_slice(&self.spi_r.0);
        put_u8(out, next_payload.0);
        put_u8(out, (self.major_version << 4) | (self.minor_version & 0x0f));
        put_u8(out, self.exchange_type.0);
        put_u8(out, self.flags.0);
        put_u32(out, self.message_id);
        put_u32(out, length);
    }
}

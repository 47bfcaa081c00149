//! Why a packet was dropped (RFC 4303 §3.4, "Inbound Packet Processing") and why a command
//! failed.
//!
//! A bad received packet is never a caller error: [`DropReason`] is a small `Copy` value,
//! counted in the SA's or the engine's statistics and traced at debug level. Commands
//! ([`crate::EspEngine::install`], [`crate::EspEngine::encapsulate`]) return structured
//! errors for caller mistakes and for SA state (sequence exhaustion, hard lifetime).

use ipsec_core::{CryptoError, Spi};

/// Why an inbound packet was dropped. Cheap to copy, never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than the headers, IV, trailer and ICV of its SA, or a CBC ciphertext that is
    /// not a whole number of blocks.
    #[error("truncated packet")]
    Truncated,
    /// No inbound SA has this SPI (RFC 4303 §3.4.2).
    #[error("unknown SPI {0}")]
    UnknownSpi(Spi),
    /// The sequence number was already received (RFC 4303 §3.4.3).
    #[error("replayed sequence number {seq}")]
    Replayed {
        /// The (ESN-inferred) sequence number.
        seq: u64,
    },
    /// The sequence number is left of the anti-replay window (RFC 4303 §3.4.3).
    #[error("sequence number {seq} left of the window")]
    TooOld {
        /// The (ESN-inferred) sequence number.
        seq: u64,
    },
    /// Sequence number zero is never sent (RFC 4303 §2.2).
    #[error("sequence number zero")]
    ZeroSequence,
    /// The ICV did not verify (RFC 4303 §3.4.4).
    #[error("integrity check failed")]
    IntegrityFailed,
    /// The padding bytes are not 1, 2, 3, … or the pad length exceeds the payload
    /// (RFC 4303 §2.4).
    #[error("bad padding")]
    BadPadding,
    /// The SA reached a hard lifetime and passes no more traffic (RFC 4301 §4.4.2.1).
    #[error("SA expired")]
    SaExpired,
    /// The decrypted packet is outside the SA's traffic selectors (RFC 4301 §5.2).
    #[error("inner packet outside the traffic selectors")]
    TsMismatch,
    /// The decrypted packet is not what the Next Header says (tunnel mode: an IPv4 or IPv6
    /// packet whose version matches, with a consistent length).
    #[error("malformed inner packet")]
    BadInnerPacket,
    /// A dummy packet (Next Header 59, RFC 4303 §2.6): authenticated, counted, discarded.
    #[error("dummy packet")]
    Dummy,
    /// The outer packet given to [`crate::EspEngine::decapsulate_ip`] is malformed, a
    /// fragment that must be reassembled first, or cut short.
    #[error("malformed outer packet")]
    BadOuterPacket,
    /// The outer packet carries no ESP: another protocol, an IKE message behind the
    /// non-ESP marker, or a NAT keepalive (RFC 3948 §2).
    #[error("not an ESP packet")]
    NotEsp,
    /// ESP in UDP for an SA negotiated without UDP encapsulation, or bare ESP (protocol 50)
    /// for one negotiated with it (RFC 3948 §3: the SA fixes the encapsulation).
    #[error("ESP encapsulation differs from the SA's")]
    EncapMismatch,
}

/// Why [`crate::EspEngine::encapsulate`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncapError {
    /// The buffer lacks headroom before or tailroom after the payload. `needed` is the
    /// smallest buffer length that works with the payload placed at
    /// [`crate::EspEngine::headroom`].
    #[error("buffer too small: {needed} octets needed")]
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
    },
    /// The payload range is not inside the buffer.
    #[error("payload range outside the buffer")]
    BadRange,
    /// No SA has this id (it was removed, or the id is stale).
    #[error("unknown SA")]
    UnknownSa,
    /// The SA is inbound.
    #[error("SA is not outbound")]
    NotOutbound,
    /// The sequence number space is used up (2^32 − 1 without ESN, 2^64 − 1 with ESN,
    /// RFC 4303 §3.3.3): rekey.
    #[error("sequence numbers exhausted")]
    SeqExhausted,
    /// The SA reached a hard lifetime.
    #[error("hard lifetime expired")]
    HardLifetimeExpired,
    /// The payload is not an IP packet of the kind the mode needs (tunnel: IPv4 or IPv6;
    /// transport: a whole, unfragmented IP packet of the SA's address family).
    #[error("malformed inner packet")]
    BadInnerPacket,
    /// The result would not fit the 16-bit length field of the outer IP header.
    #[error("packet too big")]
    PacketTooBig,
    /// The crypto provider failed.
    #[error("crypto failure: {0}")]
    Crypto(CryptoError),
}

/// Why [`crate::EspEngine::install`] refused an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// An inbound SA with this SPI is already installed.
    #[error("duplicate inbound SPI {0}")]
    DuplicateSpi(Spi),
    /// SPIs 0–255 are reserved (RFC 4303 §2.1).
    #[error("reserved SPI {0}")]
    ReservedSpi(Spi),
    /// The salt is not 4 octets (RFC 4106 §8.1).
    #[error("bad salt length")]
    BadSalt,
    /// The replay window is larger than [`ipsec_core::replay::MAX_WINDOW`].
    #[error("replay window too large")]
    ReplayWindowTooLarge,
    /// Local and remote addresses are of different families.
    #[error("address family mismatch")]
    AddressFamilyMismatch,
    /// The provider refused a key (wrong length, unsupported algorithm).
    #[error("crypto: {0}")]
    Crypto(CryptoError),
}

impl From<CryptoError> for InstallError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

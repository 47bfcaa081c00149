//! Events the engine raises for the key manager (RFC 4301 §4.4.2.1: soft lifetimes start a
//! rekey, hard lifetimes end the SA; RFC 4303 §3.3.3: the sequence counter must not cycle).
//!
//! Drain them with [`crate::EspEngine::poll_event`] after every call that takes `now`.

use ipsec_core::Spi;

use crate::sad::SaId;

/// Which lifetime limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeKind {
    /// Octets of inner payload.
    Bytes,
    /// Packets.
    Packets,
    /// Time since installation.
    Time,
}

/// Something the key manager must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EspEvent {
    /// A soft limit was reached: rekey. Raised once per SA.
    SoftLifetime {
        /// The SA.
        sa: SaId,
        /// Its SPI.
        spi: Spi,
        /// The limit that was reached first.
        kind: LifetimeKind,
    },
    /// A hard limit was reached: the SA passes no more traffic (it stays installed, refusing
    /// packets, until [`crate::EspEngine::remove`]). Raised once per SA.
    HardLifetime {
        /// The SA.
        sa: SaId,
        /// Its SPI.
        spi: Spi,
        /// The limit that was reached.
        kind: LifetimeKind,
    },
    /// An outbound SA's sequence counter passed [`crate::SEQ_WARN_MARGIN`] below its
    /// maximum (2^32 − 1 without ESN, 2^64 − 1 with ESN): rekey now. Raised once per SA.
    SeqNearExhaustion {
        /// The SA.
        sa: SaId,
        /// Its SPI.
        spi: Spi,
    },
    /// An outbound SA sent its last sequence number; every further encapsulation fails with
    /// [`crate::EncapError::SeqExhausted`]. Raised once per SA.
    SeqExhausted {
        /// The SA.
        sa: SaId,
        /// Its SPI.
        spi: Spi,
    },
}

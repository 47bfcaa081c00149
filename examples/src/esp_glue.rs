//! The adapter between the run loop and `esp::EspEngine`.
//!
//! Every call into the ESP crate goes through this module, so an API change there is a change
//! here only. The engine is used in its default [`esp::Output::Esp`] mode: `encapsulate`
//! returns the ESP packet starting at the SPI, which is exactly the UDP payload for an
//! RFC 3948 socket on port 4500, and `decapsulate` takes the UDP payload as received.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

pub use esp::{DropReason, EncapError, EspEvent, InstallError, SaId, SaStats};
use ipsec_core::{EspSaParams, RustCrypto, Spi};

/// Octets the run loop reserves before an inner packet (any SA fits).
pub const HEADROOM: usize = esp::MAX_HEADROOM;
/// Octets the run loop reserves after an inner packet (any SA fits).
pub const TAILROOM: usize = esp::MAX_TAILROOM;

/// The ESP data plane as the run loop sees it.
#[derive(Debug)]
pub struct Esp {
    engine: esp::EspEngine<RustCrypto>,
}

/// A successfully decapsulated packet: the SA and where the inner packet is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inner {
    /// The inbound SA.
    pub sa: SaId,
    /// Its SPI.
    pub spi: Spi,
    /// The inner packet, as a range of the caller's buffer.
    pub range: Range<usize>,
}

impl Default for Esp {
    fn default() -> Self {
        Self::new()
    }
}

impl Esp {
    /// An engine with the RustCrypto provider.
    pub fn new() -> Self {
        Self {
            engine: esp::EspEngine::new(Arc::new(RustCrypto::new())),
        }
    }

    /// Installs one SA.
    pub fn install(&mut self, now: Instant, params: EspSaParams) -> Result<SaId, InstallError> {
        self.engine.install(now, params)
    }

    /// Removes one SA; false if it was not installed.
    pub fn remove(&mut self, sa: SaId) -> bool {
        self.engine.remove(sa)
    }

    /// The inbound SA with this SPI.
    pub fn lookup_inbound(&self, spi: Spi) -> Option<SaId> {
        self.engine.lookup_inbound(spi)
    }

    /// Encapsulates `buf[payload]` in place (needs [`HEADROOM`] before and [`TAILROOM`]
    /// after) and returns the range of `buf` to send as the UDP payload.
    #[inline]
    pub fn encapsulate(
        &mut self,
        now: Instant,
        sa: SaId,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> Result<Range<usize>, EncapError> {
        self.engine.encapsulate(now, sa, buf, payload)
    }

    /// Decapsulates an ESP packet (the UDP payload) in place; checks replay, ICV and the
    /// inbound traffic selectors.
    #[inline]
    pub fn decapsulate(&mut self, now: Instant, buf: &mut [u8]) -> Result<Inner, DropReason> {
        self.engine.decapsulate(now, buf).map(|d| Inner {
            sa: d.sa,
            spi: d.spi,
            range: d.range,
        })
    }

    /// The next lifetime event (hand it to IKE).
    pub fn poll_event(&mut self) -> Option<EspEvent> {
        self.engine.poll_event()
    }

    /// When [`Esp::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    /// Processes time-based lifetimes.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
    }

    /// Per-SA statistics.
    pub fn stats(&self, sa: SaId) -> Option<SaStats> {
        self.engine.stats(sa)
    }

    /// Packets dropped before an SA was found (unknown SPI, truncated).
    pub fn unattributed_drops(&self) -> u64 {
        let s = self.engine.engine_stats();
        s.unknown_spi + s.truncated + s.bad_outer_packet + s.not_esp
    }
}

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
#[cfg(feature = "aws-lc")]
use ipsec_core::AwsLc;
use ipsec_core::{EspSaParams, RustCrypto, Spi};

/// Octets the run loop reserves before an inner packet (any SA fits).
pub const HEADROOM: usize = esp::MAX_HEADROOM;
/// Octets the run loop reserves after an inner packet (any SA fits).
pub const TAILROOM: usize = esp::MAX_TAILROOM;

/// The crypto provider of the ESP engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// The pure-Rust provider (RustCrypto).
    #[default]
    RustCrypto,
    /// aws-lc-rs AEADs (the `aws-lc` cargo feature).
    #[cfg(feature = "aws-lc")]
    AwsLc,
}

impl std::str::FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rustcrypto" | "rust-crypto" | "rust" => Ok(Self::RustCrypto),
            #[cfg(feature = "aws-lc")]
            "aws-lc" | "awslc" => Ok(Self::AwsLc),
            #[cfg(not(feature = "aws-lc"))]
            "aws-lc" | "awslc" => Err("built without the `aws-lc` feature".into()),
            _ => Err(format!("unknown provider {s:?} (rustcrypto, aws-lc)")),
        }
    }
}

/// One engine per provider type: the per-packet calls dispatch with one `match`, then run
/// statically dispatched crypto.
#[derive(Debug)]
enum Engine {
    Rust(esp::EspEngine<RustCrypto>),
    #[cfg(feature = "aws-lc")]
    AwsLc(esp::EspEngine<AwsLc>),
}

/// Calls the same method on whichever engine is in use.
macro_rules! with_engine {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            Engine::Rust($e) => $body,
            #[cfg(feature = "aws-lc")]
            Engine::AwsLc($e) => $body,
        }
    };
}

/// The ESP data plane as the run loop sees it.
#[derive(Debug)]
pub struct Esp {
    engine: Engine,
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
        Self::with_provider(Provider::RustCrypto)
    }

    /// An engine with `provider`.
    pub fn with_provider(provider: Provider) -> Self {
        let engine = match provider {
            Provider::RustCrypto => Engine::Rust(esp::EspEngine::new(Arc::new(RustCrypto::new()))),
            #[cfg(feature = "aws-lc")]
            Provider::AwsLc => Engine::AwsLc(esp::EspEngine::new(Arc::new(AwsLc::new()))),
        };
        Self { engine }
    }

    /// Octets written before the payload of `sa` (exact).
    #[inline]
    pub fn headroom(&self, sa: SaId) -> Option<usize> {
        with_engine!(&self.engine, e => e.headroom(sa))
    }

    /// Octets added to an inner packet of `len` octets (exact in tunnel mode).
    #[inline]
    pub fn overhead(&self, sa: SaId, len: usize) -> Option<usize> {
        with_engine!(&self.engine, e => e.overhead(sa, len))
    }

    /// Installs one SA.
    pub fn install(&mut self, now: Instant, params: EspSaParams) -> Result<SaId, InstallError> {
        with_engine!(&mut self.engine, e => e.install(now, params))
    }

    /// Removes one SA; false if it was not installed.
    pub fn remove(&mut self, sa: SaId) -> bool {
        with_engine!(&mut self.engine, e => e.remove(sa))
    }

    /// The inbound SA with this SPI.
    pub fn lookup_inbound(&self, spi: Spi) -> Option<SaId> {
        with_engine!(&self.engine, e => e.lookup_inbound(spi))
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
        with_engine!(&mut self.engine, e => e.encapsulate(now, sa, buf, payload))
    }

    /// Decapsulates an ESP packet (the UDP payload) in place; checks replay, ICV and the
    /// inbound traffic selectors.
    #[inline]
    pub fn decapsulate(&mut self, now: Instant, buf: &mut [u8]) -> Result<Inner, DropReason> {
        with_engine!(&mut self.engine, e => e.decapsulate(now, buf)).map(|d| Inner {
            sa: d.sa,
            spi: d.spi,
            range: d.range,
        })
    }

    /// The next lifetime event (hand it to IKE).
    pub fn poll_event(&mut self) -> Option<EspEvent> {
        with_engine!(&mut self.engine, e => e.poll_event())
    }

    /// When [`Esp::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        with_engine!(&self.engine, e => e.poll_timeout())
    }

    /// Processes time-based lifetimes.
    pub fn handle_timeout(&mut self, now: Instant) {
        with_engine!(&mut self.engine, e => e.handle_timeout(now));
    }

    /// Per-SA statistics.
    pub fn stats(&self, sa: SaId) -> Option<SaStats> {
        with_engine!(&self.engine, e => e.stats(sa))
    }

    /// Packets dropped before an SA was found (unknown SPI, truncated).
    pub fn unattributed_drops(&self) -> u64 {
        let s = with_engine!(&self.engine, e => e.engine_stats());
        s.unknown_spi + s.truncated + s.bad_outer_packet + s.not_esp
    }
}

//! The ESP engine: owns the SAD (RFC 4301 §4.4.2), installs and removes SAs, raises
//! lifetime events and answers timer queries. Packet processing lives in
//! [`crate::encap`] (RFC 4303 §3.3) and [`crate::decap`] (RFC 4303 §3.4).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use ipsec_core::replay::ReplayWindow;
use ipsec_core::sa::{Direction, EspSaParams};
use ipsec_core::{CryptoProvider, RustCrypto, Spi};

use crate::cipher::{Cipher, ESP_HDR_LEN};
#[cfg(feature = "test-hooks")]
use crate::error::EncapError;
use crate::error::InstallError;
use crate::event::EspEvent;
use crate::lifetime::Crossed;
use crate::sad::{Sa, SaId, Sad};
use crate::stats::{EngineStats, SaStats};

/// Distance below the last sequence number at which an outbound SA raises
/// [`EspEvent::SeqNearExhaustion`]: 2^20 packets, i.e. at 2^32 − 2^20 without ESN. At
/// 1 Mpps that leaves the key manager about a second to finish a rekey, which RFC 7296
/// §2.8 rekeys complete in a round trip or two.
pub const SEQ_WARN_MARGIN: u64 = 1 << 20;

/// Largest headroom any SA may need: outer IPv6 header, UDP header, ESP header, CBC IV.
pub const MAX_HEADROOM: usize = 40 + 8 + ESP_HDR_LEN + 16;
/// Largest tailroom any SA may need: 15 octets of CBC padding, pad length, next header and
/// a 32-octet ICV (HMAC-SHA2-512-256).
pub const MAX_TAILROOM: usize = 15 + 2 + 32;

/// What [`EspEngine::encapsulate`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The ESP packet, starting at the SPI: for a raw IP protocol 50 socket, or for a UDP
    /// socket bound to port 4500 when the SA uses UDP encapsulation (RFC 3948; the caller's
    /// socket adds the UDP header). Transport mode still needs the whole IP packet as
    /// input, and its (rewritten) IP header is left before the returned range.
    #[default]
    Esp,
    /// The whole IP packet: in tunnel mode a new outer IPv4 or IPv6 header from the SA's
    /// addresses (UDP header included when the SA has `encap`); in transport mode the
    /// caller's packet with ESP (and UDP) inserted after its IP header(s).
    Ip,
}

/// Engine configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EspConfig {
    /// What [`EspEngine::encapsulate`] produces.
    pub output: Output,
    /// TTL / hop limit of outer headers built in tunnel mode.
    pub hop_limit: u8,
}

impl Default for EspConfig {
    fn default() -> Self {
        Self {
            output: Output::Esp,
            hop_limit: 64,
        }
    }
}

impl EspConfig {
    /// The default configuration with another output format.
    pub fn with_output(output: Output) -> Self {
        Self {
            output,
            ..Self::default()
        }
    }
}

/// The result of a successful [`EspEngine::decapsulate`] or [`EspEngine::decapsulate_ip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decapsulated {
    /// The inbound SA that accepted the packet.
    pub sa: SaId,
    /// Its SPI.
    pub spi: Spi,
    /// The full (ESN-inferred) sequence number.
    pub seq: u64,
    /// Next Header from the ESP trailer: 4 or 41 in tunnel mode, the upper-layer protocol in
    /// transport mode.
    pub next_header: u8,
    /// Where the result is in the caller's buffer: the inner IP packet (tunnel mode), the
    /// rebuilt IP packet (transport mode via [`EspEngine::decapsulate_ip`]), or the
    /// upper-layer payload (transport mode via [`EspEngine::decapsulate`]).
    pub range: core::ops::Range<usize>,
}

/// The sans-IO ESP data plane.
///
/// Generic over the crypto provider `P` so that the per-packet path calls the AEAD, CBC and
/// MAC keys with static dispatch. The provider is shared (`Arc`) with the IKE side; the
/// engine only uses it in [`EspEngine::install`] to bind keys.
///
/// Every call that changes state takes `now`; the engine never reads a clock. After each
/// call drain [`EspEngine::poll_event`], then re-arm a timer for
/// [`EspEngine::poll_timeout`] and call [`EspEngine::handle_timeout`] when it fires.
pub struct EspEngine<P: CryptoProvider = RustCrypto> {
    pub(crate) provider: Arc<P>,
    pub(crate) config: EspConfig,
    pub(crate) sad: Sad<P>,
    pub(crate) events: VecDeque<EspEvent>,
    pub(crate) stats: EngineStats,
}

impl<P: CryptoProvider> core::fmt::Debug for EspEngine<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EspEngine")
            .field("provider", &self.provider)
            .field("config", &self.config)
            .field("sas", &self.sad.len())
            .field("pending_events", &self.events.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<P: CryptoProvider> EspEngine<P> {
    /// An engine with the default [`EspConfig`] (output: [`Output::Esp`]).
    pub fn new(provider: Arc<P>) -> Self {
        Self::with_config(provider, EspConfig::default())
    }

    /// An engine with `config`.
    pub fn with_config(provider: Arc<P>, config: EspConfig) -> Self {
        Self {
            provider,
            config,
            sad: Sad::new(),
            events: VecDeque::with_capacity(64),
            stats: EngineStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EspConfig {
        &self.config
    }

    /// Installs an SA, binding its keys once. Inbound SAs are indexed by SPI, which must be
    /// unique among inbound SAs and not reserved (≥ 256, RFC 4303 §2.1). Time lifetimes
    /// count from `now`.
    pub fn install(&mut self, now: Instant, params: EspSaParams) -> Result<SaId, InstallError> {
        if !params.spi.is_assignable() {
            return Err(InstallError::ReservedSpi(params.spi));
        }
        if params.direction == Direction::Inbound && self.sad.has_inbound(params.spi) {
            return Err(InstallError::DuplicateSpi(params.spi));
        }
        if params.local_addr.is_ipv4() != params.remote_addr.is_ipv4() {
            return Err(InstallError::AddressFamilyMismatch);
        }
        let window = if params.direction == Direction::Inbound {
            params.replay_window
        } else {
            0
        };
        let replay =
            ReplayWindow::new(window, params.esn).ok_or(InstallError::ReplayWindowTooLarge)?;
        let cipher = Cipher::new(&*self.provider, &params.transform)?;
        let spi = params.spi;
        let direction = params.direction;
        let id = self
            .sad
            .insert(Sa::new(params, cipher, replay, now, self.config.output));
        tracing::debug!(%spi, ?direction, ?id, "esp: SA installed");
        Ok(id)
    }

    /// Removes an SA (its keys are dropped). Returns false for an unknown or stale id.
    pub fn remove(&mut self, sa: SaId) -> bool {
        let removed = self.sad.remove(sa);
        if let Some(sa) = &removed {
            tracing::debug!(spi = %sa.spi, "esp: SA removed");
        }
        removed.is_some()
    }

    /// The inbound SA with this SPI.
    pub fn lookup_inbound(&self, spi: Spi) -> Option<SaId> {
        self.sad.lookup(spi)
    }

    /// The SPI of an SA.
    pub fn spi(&self, sa: SaId) -> Option<Spi> {
        self.sad.get(sa).map(|s| s.spi)
    }

    /// Number of installed SAs.
    pub fn sa_count(&self) -> usize {
        self.sad.len()
    }

    /// Counters of one SA, or `None` for an unknown or stale id.
    pub fn stats(&self, sa: SaId) -> Option<SaStats> {
        self.sad.get(sa).map(|s| s.stats)
    }

    /// Engine-wide counters (drops that belong to no SA).
    pub fn engine_stats(&self) -> EngineStats {
        self.stats
    }

    /// True if the SA reached a hard lifetime and passes no more traffic.
    pub fn is_expired(&self, sa: SaId) -> Option<bool> {
        self.sad.get(sa).map(|s| s.lifetime.expired().is_some())
    }

    /// The next pending event.
    pub fn poll_event(&mut self) -> Option<EspEvent> {
        self.events.pop_front()
    }

    /// The earliest pending time-lifetime deadline of any SA.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sad
            .iter()
            .filter_map(|s| s.lifetime.next_deadline())
            .min()
    }

    /// Fires the time lifetimes due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let events = &mut self.events;
        for (id, sa) in self.sad.iter_mut() {
            let c = sa.lifetime.check(now, sa.stats.packets, sa.stats.bytes);
            raise(events, id, sa.spi, c);
        }
    }

    /// Test hook: sets the last sequence number sent by an outbound SA, so that tests can
    /// cross 2^32 or reach exhaustion without sending billions of packets.
    #[doc(hidden)]
    #[cfg(feature = "test-hooks")]
    pub fn set_last_seq_for_testing(&mut self, sa: SaId, last_seq: u64) -> bool {
        match self.sad.get_mut(sa) {
            Some(s) if s.direction == Direction::Outbound => {
                s.last_seq = last_seq;
                true
            }
            _ => false,
        }
    }

    /// Test hook: records `seq` in an inbound SA's replay window as if it had been received
    /// (to set the ESN high half for known-answer vectors).
    #[doc(hidden)]
    #[cfg(feature = "test-hooks")]
    pub fn mark_received_for_testing(&mut self, sa: SaId, seq: u64) -> bool {
        match self.sad.get_mut(sa) {
            Some(s) if s.direction == Direction::Inbound => {
                s.replay.update(seq);
                true
            }
            _ => false,
        }
    }

    /// Test hook: seals `esp` (`SPI ‖ seq ‖ IV ‖ plaintext with trailer ‖ ICV space`) with
    /// the SA's keys, writing the SPI, the low sequence number, the IV (`iv`, or derived from
    /// `seq` as [`EspEngine::encapsulate`] does when `None`) and the ICV. No state changes.
    #[doc(hidden)]
    #[cfg(feature = "test-hooks")]
    pub fn seal_raw_for_testing(
        &self,
        sa: SaId,
        seq: u64,
        iv: Option<&[u8]>,
        esp: &mut [u8],
    ) -> Result<(), EncapError> {
        let s = self.sad.get(sa).ok_or(EncapError::UnknownSa)?;
        if esp.len() < ESP_HDR_LEN {
            return Err(EncapError::BufferTooSmall {
                needed: ESP_HDR_LEN,
            });
        }
        esp[..4].copy_from_slice(&s.spi.to_bytes());
        esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        s.cipher
            .seal(esp, seq, s.esn, iv)
            .map_err(EncapError::Crypto)
    }
}

/// Queues the events of a lifetime check (usually none: then nothing is called).
#[inline(always)]
pub(crate) fn raise(events: &mut VecDeque<EspEvent>, sa: SaId, spi: Spi, c: Crossed) {
    if c.any() {
        raise_events(events, sa, spi, c);
    }
}

#[cold]
#[inline(never)]
fn raise_events(events: &mut VecDeque<EspEvent>, sa: SaId, spi: Spi, c: Crossed) {
    if let Some(kind) = c.soft {
        tracing::debug!(%spi, ?kind, "esp: soft lifetime reached");
        events.push_back(EspEvent::SoftLifetime { sa, spi, kind });
    }
    if let Some(kind) = c.hard {
        tracing::debug!(%spi, ?kind, "esp: hard lifetime reached, SA expired");
        events.push_back(EspEvent::HardLifetime { sa, spi, kind });
    }
}

//! Per-SA and engine-wide counters (the "statistics" a SAD entry keeps, RFC 4301 §4.4.2.1,
//! and the auditable events of RFC 4303 §3.4).

use crate::error::DropReason;

/// Inbound drops of one SA, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropCounters {
    /// [`DropReason::Truncated`].
    pub truncated: u64,
    /// [`DropReason::Replayed`].
    pub replayed: u64,
    /// [`DropReason::TooOld`].
    pub too_old: u64,
    /// [`DropReason::ZeroSequence`].
    pub zero_sequence: u64,
    /// [`DropReason::IntegrityFailed`].
    pub integrity_failed: u64,
    /// [`DropReason::BadPadding`].
    pub bad_padding: u64,
    /// [`DropReason::SaExpired`].
    pub sa_expired: u64,
    /// [`DropReason::TsMismatch`].
    pub ts_mismatch: u64,
    /// [`DropReason::BadInnerPacket`].
    pub bad_inner_packet: u64,
    /// [`DropReason::Dummy`].
    pub dummy: u64,
    /// [`DropReason::BadOuterPacket`] after the SA was found.
    pub bad_outer_packet: u64,
    /// [`DropReason::EncapMismatch`].
    pub encap_mismatch: u64,
}

impl DropCounters {
    /// The counter for `reason` (0 for reasons counted engine-wide, such as unknown SPIs).
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Truncated => self.truncated,
            DropReason::Replayed { .. } => self.replayed,
            DropReason::TooOld { .. } => self.too_old,
            DropReason::ZeroSequence => self.zero_sequence,
            DropReason::IntegrityFailed => self.integrity_failed,
            DropReason::BadPadding => self.bad_padding,
            DropReason::SaExpired => self.sa_expired,
            DropReason::TsMismatch => self.ts_mismatch,
            DropReason::BadInnerPacket => self.bad_inner_packet,
            DropReason::Dummy => self.dummy,
            DropReason::BadOuterPacket => self.bad_outer_packet,
            DropReason::EncapMismatch => self.encap_mismatch,
            DropReason::UnknownSpi(_) | DropReason::NotEsp => 0,
        }
    }

    /// Sum of all counters.
    pub fn total(&self) -> u64 {
        self.truncated
            + self.replayed
            + self.too_old
            + self.zero_sequence
            + self.integrity_failed
            + self.bad_padding
            + self.sa_expired
            + self.ts_mismatch
            + self.bad_inner_packet
            + self.dummy
            + self.bad_outer_packet
            + self.encap_mismatch
    }

    pub(crate) fn bump(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Truncated => &mut self.truncated,
            DropReason::Replayed { .. } => &mut self.replayed,
            DropReason::TooOld { .. } => &mut self.too_old,
            DropReason::ZeroSequence => &mut self.zero_sequence,
            DropReason::IntegrityFailed => &mut self.integrity_failed,
            DropReason::BadPadding => &mut self.bad_padding,
            DropReason::SaExpired => &mut self.sa_expired,
            DropReason::TsMismatch => &mut self.ts_mismatch,
            DropReason::BadInnerPacket => &mut self.bad_inner_packet,
            DropReason::Dummy => &mut self.dummy,
            DropReason::EncapMismatch => &mut self.encap_mismatch,
            DropReason::BadOuterPacket | DropReason::UnknownSpi(_) | DropReason::NotEsp => {
                &mut self.bad_outer_packet
            }
        };
        *c += 1;
    }
}

/// Counters of one SA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaStats {
    /// Packets encapsulated (outbound) or delivered (inbound).
    pub packets: u64,
    /// Octets of inner payload in those packets: the inner IP packet in tunnel mode, the
    /// upper-layer payload in transport mode. Lifetimes count the same octets.
    pub bytes: u64,
    /// Inbound drops after the SA was found, by reason.
    pub drops: DropCounters,
    /// Outbound packets refused (sequence exhaustion, hard lifetime, bad input).
    pub encap_errors: u64,
    /// The highest sequence number sent (outbound) or accepted (inbound).
    pub last_seq: u64,
}

/// Engine-wide counters: drops that belong to no SA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Packets whose SPI matched no inbound SA.
    pub unknown_spi: u64,
    /// Packets too short to carry an SPI and sequence number.
    pub truncated: u64,
    /// Outer packets that were malformed before an SA could be found.
    pub bad_outer_packet: u64,
    /// Outer packets that carried no ESP (IKE on port 4500, keepalives, other protocols).
    pub not_esp: u64,
}

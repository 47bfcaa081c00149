//! Soft and hard SA lifetimes in octets, packets and time (RFC 4301 §4.4.2.1, "Lifetime of
//! this SA"), evaluated against the caller's clock.
//!
//! Rules: counters count delivered (inbound) or sent (outbound) packets and their inner
//! payload octets. A limit is reached when a counter becomes ≥ the limit, or when `now` ≥
//! installation + time limit. The packet that reaches a hard packet or octet limit is the
//! last one processed; the SA is expired right after it. Each of the soft and hard events is
//! raised once per SA, naming the first limit reached.

use std::time::Instant;

use ipsec_core::Lifetime;
use ipsec_core::sa::LifetimeLimits;

use crate::event::LifetimeKind;

/// What a lifetime check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Crossed {
    pub soft: Option<LifetimeKind>,
    pub hard: Option<LifetimeKind>,
}

impl Crossed {
    /// True if an event is to be raised.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.soft.is_some() || self.hard.is_some()
    }
}

/// Lifetime state of one SA.
#[derive(Debug, Clone)]
pub(crate) struct LifetimeState {
    soft: LifetimeLimits,
    hard: LifetimeLimits,
    soft_deadline: Option<Instant>,
    hard_deadline: Option<Instant>,
    soft_fired: bool,
    expired: Option<LifetimeKind>,
    /// The per-packet fast path: nothing can have been reached while the counters stay
    /// below these and `now` below `next_time` (the smallest pending limit of each kind;
    /// `u64::MAX` or `None` when none is pending). Recomputed whenever an event fires.
    next_packets: u64,
    next_bytes: u64,
    next_time: Option<Instant>,
}

fn reached(l: &LifetimeLimits, packets: u64, bytes: u64) -> Option<LifetimeKind> {
    if l.bytes.is_some_and(|b| bytes >= b) {
        Some(LifetimeKind::Bytes)
    } else if l.packets.is_some_and(|p| packets >= p) {
        Some(LifetimeKind::Packets)
    } else {
        None
    }
}

impl LifetimeState {
    pub(crate) fn new(l: &Lifetime, installed: Instant) -> Self {
        let mut s = Self {
            soft: l.soft,
            hard: l.hard,
            soft_deadline: l.soft.time.and_then(|d| installed.checked_add(d)),
            hard_deadline: l.hard.time.and_then(|d| installed.checked_add(d)),
            soft_fired: false,
            expired: None,
            next_packets: 0,
            next_bytes: 0,
            next_time: None,
        };
        s.rearm();
        s
    }

    /// Recomputes the fast-path thresholds from the limits still pending.
    fn rearm(&mut self) {
        let pending = |l: &LifetimeLimits, deadline: Option<Instant>, on: bool| {
            if on {
                (l.packets, l.bytes, deadline)
            } else {
                (None, None, None)
            }
        };
        let (sp, sb, st) = pending(&self.soft, self.soft_deadline, !self.soft_fired);
        let (hp, hb, ht) = pending(&self.hard, self.hard_deadline, self.expired.is_none());
        let min = |a: Option<u64>, b: Option<u64>| a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX));
        self.next_packets = min(sp, hp);
        self.next_bytes = min(sb, hb);
        self.next_time = match (st, ht) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// The hard limit that expired the SA, if any.
    #[inline]
    pub(crate) fn expired(&self) -> Option<LifetimeKind> {
        self.expired
    }

    /// Checks the time limits at `now` and the counters (after a packet); marks the state.
    #[inline]
    pub(crate) fn check(&mut self, now: Instant, packets: u64, bytes: u64) -> Crossed {
        if packets < self.next_packets
            && bytes < self.next_bytes
            && self.next_time.is_none_or(|t| now < t)
        {
            return Crossed::default();
        }
        self.check_slow(now, packets, bytes)
    }

    #[cold]
    #[inline(never)]
    fn check_slow(&mut self, now: Instant, packets: u64, bytes: u64) -> Crossed {
        let mut out = Crossed::default();
        if !self.soft_fired {
            let k = reached(&self.soft, packets, bytes).or_else(|| {
                self.soft_deadline
                    .is_some_and(|d| now >= d)
                    .then_some(LifetimeKind::Time)
            });
            if k.is_some() {
                self.soft_fired = true;
                out.soft = k;
            }
        }
        if self.expired.is_none() {
            let k = reached(&self.hard, packets, bytes).or_else(|| {
                self.hard_deadline
                    .is_some_and(|d| now >= d)
                    .then_some(LifetimeKind::Time)
            });
            if k.is_some() {
                self.expired = k;
                out.hard = k;
                if !self.soft_fired {
                    // A hard limit below the soft one: report the rekey need as well.
                    self.soft_fired = true;
                    out.soft = k;
                }
            }
        }
        self.rearm();
        out
    }

    /// The next time deadline still pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let soft = self.soft_deadline.filter(|_| !self.soft_fired);
        let hard = self.hard_deadline.filter(|_| self.expired.is_none());
        match (soft, hard) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

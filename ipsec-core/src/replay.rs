//! The ESP anti-replay window (RFC 4303 §3.4.3, Appendix A) as the bitmap of RFC 6479.
//!
//! The window is a ring of 64-bit blocks indexed by the sequence number itself, so
//! [`ReplayWindow::check`] and [`ReplayWindow::update`] are O(1) whatever the window size:
//! sliding forward clears at most the blocks that were skipped, and never shifts bits.
//!
//! The receiver must call `check` before it spends a decryption on a packet and `update`
//! only after the ICV verified (RFC 4303 §3.4.3), otherwise a forged packet could move the
//! window. With extended sequence numbers the high 32 bits are not on the wire; they are
//! inferred from the window by [`ReplayWindow::infer_seq`] (RFC 4303 Appendix A.2) and then
//! authenticated by the ICV.

/// Why a sequence number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// This sequence number was already received.
    #[error("duplicate sequence number")]
    Replayed,
    /// The sequence number is left of the window.
    #[error("sequence number left of the window")]
    TooOld,
    /// Sequence number zero is never sent (RFC 4303 §2.2).
    #[error("sequence number zero")]
    Zero,
}

/// Largest supported window, in packets.
pub const MAX_WINDOW: u32 = 65536;

/// An anti-replay window of `size` packets, optionally for 64-bit extended sequence numbers.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    blocks: Box<[u64]>,
    size: u32,
    top: u64,
    esn: bool,
}

impl ReplayWindow {
    /// A window for `size` packets (0 disables the check, RFC 4303 §3.4.3; at most
    /// [`MAX_WINDOW`]). Returns `None` for a size above the maximum.
    pub fn new(size: u32, esn: bool) -> Option<Self> {
        if size > MAX_WINDOW {
            return None;
        }
        // One spare block so the block holding `top` never aliases the oldest block in use.
        let n = (size.div_ceil(64) as usize + 1).next_power_of_two();
        Some(Self {
            blocks: vec![0; n].into_boxed_slice(),
            size,
            top: 0,
            esn,
        })
    }

    /// Window size in packets.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Highest sequence number accepted so far (0 before the first).
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The full sequence number for the low 32 bits seen on the wire.
    ///
    /// Without ESN this is just `low`. With ESN it applies RFC 4303 Appendix A.2: pick the
    /// high half that puts the number inside or right of the window.
    #[inline]
    pub fn infer_seq(&self, low: u32) -> u64 {
        if !self.esn {
            return u64::from(low);
        }
        // Without a window (size 0) there is nothing to stay inside: pick the high half
        // that puts the number closest to the top, as a window of 2^31 would.
        let w = if self.size == 0 { 1 << 31 } else { self.size };
        let th = (self.top >> 32) as u32;
        let tl = self.top as u32;
        let bottom = tl.wrapping_sub(w - 1);
        let hi = if tl >= w - 1 {
            // Window entirely within one 2^32 subspace.
            if low >= bottom {
                th
            } else {
                th.wrapping_add(1)
            }
        } else if low >= bottom && th > 0 {
            // Window spans two subspaces and `low` is in the lower (older) one. In the
            // first subspace there is no older one: `low` is then ahead of the window.
            th - 1
        } else {
            th
        };
        (u64::from(hi) << 32) | u64::from(low)
    }

    #[inline]
    fn locate(&self, seq: u64) -> (usize, u64) {
        let mask = self.blocks.len() - 1;
        (((seq >> 6) as usize) & mask, 1u64 << (seq & 63))
    }

    /// Would a packet with this (full) sequence number be accepted?
    #[inline]
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 || (!self.esn && seq > u64::from(u32::MAX)) {
            // A non-ESN SA never carries numbers above 2^32 - 1; 0 is never sent.
            return Err(if seq == 0 {
                ReplayError::Zero
            } else {
                ReplayError::TooOld
            });
        }
        if self.size == 0 || seq > self.top {
            return Ok(());
        }
        if self.top - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (block, bit) = self.locate(seq);
        if self.blocks[block] & bit != 0 {
            Err(ReplayError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records an authenticated sequence number, sliding the window if it is new.
    ///
    /// Callers check first; recording a number that `check` refuses is a no-op.
    #[inline]
    pub fn update(&mut self, seq: u64) {
        if self.check(seq).is_err() {
            return;
        }
        if seq > self.top {
            let mask = self.blocks.len() - 1;
            let old = self.top >> 6;
            let new = seq >> 6;
            let skipped = new - old;
            if skipped as usize >= self.blocks.len() {
                self.blocks.fill(0);
            } else {
                for i in 1..=skipped {
                    self.blocks[((old + i) as usize) & mask] = 0;
                }
            }
            self.top = seq;
        }
        if self.size != 0 {
            let (block, bit) = self.locate(seq);
            self.blocks[block] |= bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn basic_window() {
        let mut w = ReplayWindow::new(64, false).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::Zero));
        for s in [1, 5, 3, 64] {
            w.check(s).unwrap();
            w.update(s);
        }
        assert_eq!(w.check(3), Err(ReplayError::Replayed));
        w.check(2).unwrap();
        w.update(200);
        assert_eq!(w.check(136), Err(ReplayError::TooOld));
        w.check(137).unwrap();
        assert_eq!(w.check(200), Err(ReplayError::Replayed));
        assert!(ReplayWindow::new(MAX_WINDOW + 1, false).is_none());
    }

    #[test]
    fn zero_window_accepts_duplicates() {
        let mut w = ReplayWindow::new(0, false).unwrap();
        w.update(10);
        w.check(10).unwrap();
        w.check(1).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::Zero));
    }

    /// RFC 4303 Appendix A.2, both cases of the high-order-bits inference.
    #[test]
    fn esn_inference() {
        let mut w = ReplayWindow::new(128, true).unwrap();
        // Window within one subspace: top = 2^32 + 1000.
        w.update((1 << 32) + 1000);
        assert_eq!(w.infer_seq(1001), (1 << 32) + 1001);
        assert_eq!(w.infer_seq(900), (1 << 32) + 900);
        assert_eq!(w.infer_seq(873), (1 << 32) + 873);
        // Below the window: must be the next subspace (a wrap), not an old packet.
        assert_eq!(w.infer_seq(872), (2 << 32) + 872);
        // Window spanning two subspaces: top = 2^33 + 10.
        let mut w = ReplayWindow::new(128, true).unwrap();
        w.update((2 << 32) + 10);
        assert_eq!(w.infer_seq(5), (2 << 32) + 5);
        assert_eq!(
            w.infer_seq(u32::MAX - 3),
            (1 << 32) + u64::from(u32::MAX - 3)
        );
        assert_eq!(w.infer_seq(500), (2 << 32) + 500);
        // A fresh ESN SA starts at subspace 0, and never infers a subspace below it.
        let w = ReplayWindow::new(1024, true).unwrap();
        assert_eq!(w.infer_seq(1), 1);
        assert_eq!(w.infer_seq(u32::MAX - 5), u64::from(u32::MAX - 5));
    }

    #[test]
    fn esn_without_window_still_infers_reordered_numbers() {
        let mut w = ReplayWindow::new(0, true).unwrap();
        w.update(10);
        assert_eq!(
            w.infer_seq(9),
            9,
            "a reordered packet is not taken for the next subspace"
        );
        assert_eq!(w.infer_seq(11), 11);
        w.update((5 << 32) + 7);
        assert_eq!(w.infer_seq(u32::MAX), (4 << 32) + u64::from(u32::MAX));
        assert_eq!(w.infer_seq(8), (5 << 32) + 8);
    }

    #[test]
    fn non_esn_refuses_beyond_32_bits() {
        let w = ReplayWindow::new(64, false).unwrap();
        assert_eq!(w.check(1 << 32), Err(ReplayError::TooOld));
        assert_eq!(w.infer_seq(7), 7);
    }

    /// The naive model: a set of everything seen and the top.
    struct Model {
        seen: BTreeSet<u64>,
        top: u64,
        size: u64,
    }

    impl Model {
        fn check(&self, s: u64) -> Result<(), ReplayError> {
            if s == 0 {
                return Err(ReplayError::Zero);
            }
            if s > self.top {
                return Ok(());
            }
            if self.top - s >= self.size {
                return Err(ReplayError::TooOld);
            }
            if self.seen.contains(&s) {
                Err(ReplayError::Replayed)
            } else {
                Ok(())
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn matches_naive_model(
            size in prop::sample::select(vec![1u32, 32, 64, 65, 128, 1000, 1024, 4096]),
            ops in prop::collection::vec((0u64..6000, any::<bool>()), 1..400),
            base in prop::sample::select(vec![0u64, (1 << 32) - 3000, 7 << 32]),
        ) {
            let mut w = ReplayWindow::new(size, true).unwrap();
            let mut m = Model { seen: BTreeSet::new(), top: 0, size: u64::from(size) };
            for (off, commit) in ops {
                let s = base + off;
                prop_assert_eq!(w.check(s), m.check(s), "seq {} top {}", s, m.top);
                if commit && m.check(s).is_ok() {
                    w.update(s);
                    m.seen.insert(s);
                    m.top = m.top.max(s);
                }
                prop_assert_eq!(w.top(), m.top);
            }
        }

        #[test]
        fn esn_inference_recovers_sequence_near_top(
            top in 1u64..(1 << 40),
            delta in -1000i64..100_000,
        ) {
            let mut w = ReplayWindow::new(1024, true).unwrap();
            w.update(top);
            let seq = top as i64 + delta;
            // Anything inside the window or ahead of it by less than 2^32 - window is recovered.
            prop_assume!(seq > 0 && (delta >= 0 || -delta < 1024));
            let seq = seq as u64;
            prop_assert_eq!(w.infer_seq(seq as u32), seq);
        }
    }
}

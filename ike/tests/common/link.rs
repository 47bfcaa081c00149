//! A seeded model of the network between two peers: loss, duplication, reordering, delay and
//! an MTU. Every decision comes from one splitmix64 stream, so a failing run is reproduced by
//! its seed (taken from `IPSEC_TEST_SEED`, printed on failure by the harness).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// splitmix64: small, fast, good enough to drive a link model.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The seed for this run: `IPSEC_TEST_SEED` if set, else `default`.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var("IPSEC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Link impairments.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram gets extra delay (and so may overtake or be overtaken).
    pub reorder: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Largest datagram carried; bigger ones are dropped.
    pub mtu: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::from_millis(10),
            mtu: 1500,
        }
    }
}

impl LinkConfig {
    /// A lossy, duplicating, reordering link.
    pub fn lossy(loss: f64) -> Self {
        Self {
            loss,
            duplicate: loss / 2.0,
            reorder: loss,
            ..Self::default()
        }
    }
}

/// A datagram in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// One direction-agnostic queue of datagrams ordered by delivery time.
#[derive(Debug)]
pub struct Link {
    pub config: LinkConfig,
    pub rng: Rng,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    slots: Vec<Option<InFlight>>,
    seq: u64,
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Drop exactly these datagrams (1-based count of datagrams offered to the link).
    pub drop_nth: Vec<u64>,
    /// Deliver these twice, the copy 50 ms late.
    pub dup_nth: Vec<u64>,
}

impl Link {
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            seq: 0,
            sent: 0,
            lost: 0,
            duplicated: 0,
            drop_nth: Vec::new(),
            dup_nth: Vec::new(),
        }
    }

    /// Offers a datagram to the link at `now`.
    pub fn send(&mut self, now: Instant, d: InFlight) {
        self.sent += 1;
        if self.drop_nth.contains(&self.sent)
            || d.payload.len() > self.config.mtu
            || self.rng.chance(self.config.loss)
        {
            self.lost += 1;
            return;
        }
        if self.dup_nth.contains(&self.sent) {
            self.duplicated += 1;
            self.seq += 1;
            self.slots.push(Some(d.clone()));
            let at = now + self.config.delay + Duration::from_millis(50);
            self.queue
                .push(Reverse((at, self.seq, self.slots.len() - 1)));
        }
        let copies = if self.rng.chance(self.config.duplicate) {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.config.delay;
            if self.rng.chance(self.config.reorder) {
                at += Duration::from_millis(
                    self.rng.below(3 * self.config.delay.as_millis() as u64 + 1),
                );
            }
            self.seq += 1;
            self.slots.push(Some(d.clone()));
            self.queue
                .push(Reverse((at, self.seq, self.slots.len() - 1)));
        }
    }

    /// Offers a datagram to a lossless, non-reordering path with the same base delay, in
    /// the same queue (so it keeps its order against the other datagrams sent at the same
    /// instant). Not counted in `sent`: `drop_nth` positions stay those of the lossy path.
    pub fn send_reliable(&mut self, now: Instant, d: InFlight) {
        let at = now + self.config.delay;
        self.seq += 1;
        self.slots.push(Some(d));
        self.queue
            .push(Reverse((at, self.seq, self.slots.len() - 1)));
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Takes the next datagram due at or before `now`.
    pub fn recv(&mut self, now: Instant) -> Option<InFlight> {
        let Reverse((t, _, slot)) = *self.queue.peek()?;
        if t > now {
            return None;
        }
        self.queue.pop();
        let d = self.slots[slot].take();
        if self.queue.is_empty() {
            // Bounded memory on long runs.
            self.slots.clear();
        }
        d
    }

    /// Drops everything in flight.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.slots.clear();
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

//! The Security Association Database (RFC 4301 §4.4.2): a slab of SAs addressed by
//! generational [`SaId`] handles, with an index from inbound SPI to slot (RFC 4301
//! §4.1: for unicast SAs the SPI alone selects the inbound SA, since we choose it).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::time::Instant;

use ipsec_core::replay::ReplayWindow;
use ipsec_core::sa::{Direction, EspSaParams, Mode, UdpEncap};
use ipsec_core::ts::PortRange;
use ipsec_core::{CryptoProvider, Spi, TrafficSelector};

use crate::cipher::{Cipher, ESP_HDR_LEN};
use crate::engine::{Output, SEQ_WARN_MARGIN};
use crate::lifetime::LifetimeState;
use crate::packet::{IPV4_HDR_LEN, IPV6_HDR_LEN, UDP_HDR_LEN};
use crate::stats::SaStats;

/// An address as a number, IPv4 in the low 32 bits (the family is compared separately).
#[inline]
pub(crate) fn addr_num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A traffic selector flattened for the per-packet check: the same rule as
/// [`TrafficSelector::matches`] without re-deriving the bounds from `IpAddr`s each time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selector {
    v6: bool,
    start: u128,
    end: u128,
    /// 0 for any.
    proto: u8,
    /// `None` for any port (then the packet's ports do not matter).
    ports: Option<PortRange>,
}

impl Selector {
    fn new(ts: &TrafficSelector) -> Self {
        Self {
            v6: !ts.is_ipv4(),
            start: addr_num(ts.start()),
            end: addr_num(ts.end()),
            proto: ts.ip_protocol,
            ports: (ts.ports != PortRange::ANY).then_some(ts.ports),
        }
    }

    /// Does a packet with this address (family `v6`, value from [`addr_num`]), protocol and
    /// port match?
    #[inline]
    pub(crate) fn matches(&self, v6: bool, addr: u128, proto: u8, port: Option<u16>) -> bool {
        self.v6 == v6
            && self.start <= addr
            && addr <= self.end
            && (self.proto == 0 || self.proto == proto)
            && self.ports.is_none_or(|p| p.matches(port))
    }
}

/// Per-SA sizes fixed at installation (they depend on the transform, the mode, the outer
/// family, UDP encapsulation and the engine's [`Output`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Octets written before the payload in tunnel mode, or inserted after the IP
    /// header(s) in transport mode: outer IP header, UDP header, ESP header, IV.
    pub head: usize,
    /// Outer IP header built in tunnel mode with [`Output::Ip`], else 0.
    pub outer_ip: usize,
    /// UDP header written with [`Output::Ip`] when the SA has `encap`, else 0.
    pub udp: usize,
    pub iv_len: usize,
    pub icv_len: usize,
    /// Payload ‖ padding ‖ pad length ‖ next header alignment minus 1 (a power of two).
    pub align_mask: usize,
    /// Smallest ESP packet with a valid ciphertext: header, IV, minimal ciphertext, ICV.
    pub min_esp_len: usize,
    /// Largest sequence number this SA may use (RFC 4303 §2.2, §3.3.3).
    pub max_seq: u64,
    /// From this sequence number on, [`crate::EspEvent::SeqNearExhaustion`] is due.
    pub warn_seq: u64,
}

/// A handle to an installed SA. Generational: once the SA is removed, its id never names
/// another SA, even if the slot is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaId {
    index: u32,
    generation: u32,
}

/// One SA.
pub(crate) struct Sa<P: CryptoProvider> {
    pub spi: Spi,
    pub direction: Direction,
    pub mode: Mode,
    pub esn: bool,
    pub encap: Option<UdpEncap>,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    /// Selectors of our side and the peer's, flattened ([`Selector`]).
    pub ts_local: Vec<Selector>,
    pub ts_remote: Vec<Selector>,
    /// Some selector restricts ports: packets' ports must be read to check them.
    pub ts_ports: bool,
    pub layout: Layout,
    pub cipher: Cipher<P>,
    /// Outbound: the last sequence number sent (0 before the first packet).
    pub last_seq: u64,
    /// Outbound: the warning of [`crate::EspEvent::SeqNearExhaustion`] was raised.
    pub seq_warned: bool,
    /// Outbound: [`crate::EspEvent::SeqExhausted`] was raised.
    pub seq_exhausted: bool,
    /// Outbound: identification field of outer IPv4 headers.
    pub ipv4_id: u16,
    /// Inbound: the anti-replay window (size 0 = no replay protection, still ESN-aware).
    pub replay: ReplayWindow,
    pub lifetime: LifetimeState,
    pub stats: SaStats,
}

impl<P: CryptoProvider> Sa<P> {
    pub(crate) fn new(
        params: EspSaParams,
        cipher: Cipher<P>,
        replay: ReplayWindow,
        now: Instant,
        output: Output,
    ) -> Self {
        let udp = if output == Output::Ip && params.encap.is_some() {
            UDP_HDR_LEN
        } else {
            0
        };
        let outer_ip = match (params.mode, output) {
            (Mode::Tunnel, Output::Ip) if params.remote_addr.is_ipv4() => IPV4_HDR_LEN,
            (Mode::Tunnel, Output::Ip) => IPV6_HDR_LEN,
            _ => 0,
        };
        let max_seq = if params.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        let layout = Layout {
            head: outer_ip + udp + ESP_HDR_LEN + cipher.iv_len(),
            outer_ip,
            udp,
            iv_len: cipher.iv_len(),
            icv_len: cipher.icv_len(),
            align_mask: cipher.align() - 1,
            min_esp_len: ESP_HDR_LEN + cipher.iv_len() + cipher.min_ct_len() + cipher.icv_len(),
            max_seq,
            warn_seq: max_seq - SEQ_WARN_MARGIN,
        };
        debug_assert!(cipher.align().is_power_of_two());
        Self {
            spi: params.spi,
            direction: params.direction,
            mode: params.mode,
            esn: params.esn,
            encap: params.encap,
            local_addr: params.local_addr,
            remote_addr: params.remote_addr,
            ts_ports: params
                .ts_local
                .iter()
                .chain(&params.ts_remote)
                .any(|t| t.ports != PortRange::ANY),
            ts_local: params.ts_local.iter().map(Selector::new).collect(),
            ts_remote: params.ts_remote.iter().map(Selector::new).collect(),
            layout,
            cipher,
            last_seq: 0,
            seq_warned: false,
            seq_exhausted: false,
            ipv4_id: 0,
            replay,
            lifetime: LifetimeState::new(&params.lifetime, now),
            stats: SaStats::default(),
        }
    }
}

/// Multiplicative hashing for SPIs. SPIs in the table are chosen by us (random), and an
/// attacker only chooses lookup keys, so no keyed hash is needed on this path.
#[derive(Default)]
pub(crate) struct SpiHasher(u64);

impl Hasher for SpiHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = (u64::from(i) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

struct Slot<P: CryptoProvider> {
    generation: u32,
    sa: Option<Sa<P>>,
}

/// The SAD.
pub(crate) struct Sad<P: CryptoProvider> {
    slots: Vec<Slot<P>>,
    free: Vec<u32>,
    inbound: HashMap<u32, u32, BuildHasherDefault<SpiHasher>>,
}

impl<P: CryptoProvider> Sad<P> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            inbound: HashMap::default(),
        }
    }

    pub(crate) fn has_inbound(&self, spi: Spi) -> bool {
        self.inbound.contains_key(&spi.0)
    }

    pub(crate) fn insert(&mut self, sa: Sa<P>) -> SaId {
        let inbound_spi = (sa.direction == Direction::Inbound).then_some(sa.spi);
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].sa = Some(sa);
                i
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    sa: Some(sa),
                });
                (self.slots.len() - 1) as u32
            }
        };
        if let Some(spi) = inbound_spi {
            self.inbound.insert(spi.0, index);
        }
        SaId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    pub(crate) fn remove(&mut self, id: SaId) -> Option<Sa<P>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let sa = slot.sa.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        if sa.direction == Direction::Inbound {
            self.inbound.remove(&sa.spi.0);
        }
        Some(sa)
    }

    #[inline]
    pub(crate) fn get(&self, id: SaId) -> Option<&Sa<P>> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.sa.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: SaId) -> Option<&mut Sa<P>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.sa.as_mut()
    }

    /// The inbound SA with this SPI, and its id, in one lookup.
    #[inline]
    pub(crate) fn lookup_mut(&mut self, spi: Spi) -> Option<(SaId, &mut Sa<P>)> {
        let index = *self.inbound.get(&spi.0)?;
        let slot = self.slots.get_mut(index as usize)?;
        let id = SaId {
            index,
            generation: slot.generation,
        };
        Some((id, slot.sa.as_mut()?))
    }

    /// The inbound SA with this SPI.
    #[inline]
    pub(crate) fn lookup(&self, spi: Spi) -> Option<SaId> {
        let index = *self.inbound.get(&spi.0)?;
        let slot = self.slots.get(index as usize)?;
        Some(SaId {
            index,
            generation: slot.generation,
        })
    }

    /// Every installed SA.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (SaId, &mut Sa<P>)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let generation = s.generation;
            s.sa.as_mut().map(|sa| {
                (
                    SaId {
                        index: i as u32,
                        generation,
                    },
                    sa,
                )
            })
        })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Sa<P>> {
        self.slots.iter().filter_map(|s| s.sa.as_ref())
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

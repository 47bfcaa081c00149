//! ESP SA parameters: the plain data the IKE control plane hands to the ESP data plane, one
//! value per direction (RFC 4301 §4.4.2 "SAD", RFC 7296 §2.17 for where the keys come from).
//!
//! Nothing here refers back to IKE: an [`EspSaParams`] can be built by hand, by our `ike`
//! crate, or by any other key manager, and installed into `esp::EspEngine`.

use core::time::Duration;
use std::net::IpAddr;

use crate::crypto::{AEAD_SALT_LEN, AeadAlgorithm};
use crate::secret::SecretBytes;
use crate::spi::Spi;
use crate::transform::IntegId;
use crate::ts::TrafficSelector;

/// IPsec mode (RFC 4301 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The whole inner IP packet is protected and a new outer header is added.
    Tunnel,
    /// Only the upper-layer payload is protected; the original IP header is kept.
    Transport,
}

/// Direction of an SA relative to this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We receive and decapsulate.
    Inbound,
    /// We encapsulate and send.
    Outbound,
}

/// The cryptographic transform of an ESP SA with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EspTransform {
    /// A combined-mode cipher: AES-GCM-16 (RFC 4106) or ChaCha20-Poly1305 (RFC 7634).
    Aead {
        /// The algorithm and key size.
        alg: AeadAlgorithm,
        /// Cipher key ([`AeadAlgorithm::key_len`] octets).
        key: SecretBytes,
        /// The 4-octet salt taken from the end of the KEYMAT slice (RFC 4106 §8.1).
        salt: SecretBytes,
    },
    /// AES-CBC (RFC 3602) with an HMAC-SHA2 integrity transform (RFC 4868).
    CbcHmac {
        /// AES key of 16, 24 or 32 octets.
        enc_key: SecretBytes,
        /// The integrity algorithm.
        integ: IntegId,
        /// Integrity key.
        integ_key: SecretBytes,
    },
}

impl EspTransform {
    /// Builds an AEAD transform from a KEYMAT slice laid out as key ‖ salt (RFC 4106 §8.1,
    /// RFC 7634 §2). Returns `None` if the slice has the wrong length.
    pub fn aead_from_keymat(alg: AeadAlgorithm, keymat: &[u8]) -> Option<Self> {
        if keymat.len() != alg.keymat_len() {
            return None;
        }
        let (k, s) = keymat.split_at(alg.key_len());
        Some(Self::Aead {
            alg,
            key: SecretBytes::from_slice(k),
            salt: SecretBytes::from_slice(s),
        })
    }

    /// Octets of KEYMAT this transform consumes (encryption key first, then integrity key,
    /// RFC 7296 §2.17).
    pub fn keymat_len(&self) -> usize {
        match self {
            Self::Aead { alg, .. } => alg.key_len() + AEAD_SALT_LEN,
            Self::CbcHmac {
                enc_key, integ_key, ..
            } => enc_key.len() + integ_key.len(),
        }
    }
}

/// One set of lifetime limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifetimeLimits {
    /// Octets of inner payload processed.
    pub bytes: Option<u64>,
    /// Packets processed.
    pub packets: Option<u64>,
    /// Time since installation.
    pub time: Option<Duration>,
}

/// Soft (rekey) and hard (expire) lifetimes of an SA (RFC 4301 §4.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// Reaching any soft limit raises a one-shot event so the key manager can rekey.
    pub soft: LifetimeLimits,
    /// Reaching any hard limit stops the SA from passing traffic.
    pub hard: LifetimeLimits,
}

/// UDP encapsulation of ESP (RFC 3948): ports of the outer UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    /// Our UDP port (normally 4500).
    pub local_port: u16,
    /// The peer's UDP port (4500, or whatever a NAT mapped it to).
    pub remote_port: u16,
}

/// The default anti-replay window, in packets.
pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;

/// Everything the ESP data plane needs for one SA in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspSaParams {
    /// The SPI carried in the ESP header: chosen by the receiver (our SPI for inbound SAs,
    /// the peer's for outbound ones).
    pub spi: Spi,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Tunnel or transport mode.
    pub mode: Mode,
    /// Cipher(s) and keys.
    pub transform: EspTransform,
    /// Extended (64-bit) sequence numbers negotiated (RFC 4303 §2.2.1).
    pub esn: bool,
    /// Anti-replay window in packets for inbound SAs; 0 disables replay protection.
    pub replay_window: u32,
    /// Soft and hard lifetimes.
    pub lifetime: Lifetime,
    /// UDP encapsulation (RFC 3948), if any.
    pub encap: Option<UdpEncap>,
    /// Our outer address (tunnel endpoint, or host address in transport mode).
    pub local_addr: IpAddr,
    /// The peer's outer address.
    pub remote_addr: IpAddr,
    /// Traffic selectors on our side (inner source for outbound, inner destination for inbound).
    pub ts_local: Vec<TrafficSelector>,
    /// Traffic selectors on the peer's side.
    pub ts_remote: Vec<TrafficSelector>,
}

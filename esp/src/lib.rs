//! The ESP data plane of ipsec-rs (RFC 4303): sans-IO, in place on caller buffers, no
//! allocation per packet.
//!
//! [`EspEngine`] owns the Security Association Database (RFC 4301 §4.4.2). The key manager
//! (our `ike` crate or any other) hands it one [`EspSaParams`] per SA and direction; the
//! caller's run loop owns sockets, TUN devices and the clock, and passes `now` into every
//! call that changes state.
//!
//! * Transforms: AES-GCM-16 with 128/256-bit keys (RFC 4106), ChaCha20-Poly1305
//!   (RFC 7634), AES-CBC with HMAC-SHA2 (RFC 3602, RFC 4868). AEAD IVs are the 64-bit
//!   sequence number (RFC 4106 §3.1); CBC IVs are AES_K(seq ‖ 0^64), unpredictable without
//!   the key (NIST SP 800-38A App. C), so no randomness is drawn per packet.
//! * Tunnel mode for inner IPv4 and IPv6, transport mode for IPv4 and IPv6 (with extension
//!   headers), UDP encapsulation (RFC 3948), extended sequence numbers (RFC 4303 §2.2.1).
//! * Anti-replay (RFC 4303 §3.4.3), inbound traffic selector check (RFC 4301 §5.2), soft and
//!   hard lifetimes in octets, packets and time, sequence exhaustion events.
//!
//! # Run loop
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use esp::{EspEngine, EspEvent, Output};
//! use ipsec_core::crypto::AeadAlgorithm;
//! use ipsec_core::sa::{Direction, EspSaParams, EspTransform, Lifetime, Mode};
//! use ipsec_core::{RustCrypto, Spi, TrafficSelector};
//!
//! let now = Instant::now(); // the caller's clock; the engine never reads one
//! let mut engine = EspEngine::new(Arc::new(RustCrypto::new()));
//! let params = |spi, direction| EspSaParams {
//!     spi: Spi(spi),
//!     direction,
//!     mode: Mode::Tunnel,
//!     transform: EspTransform::aead_from_keymat(AeadAlgorithm::Aes256Gcm, &[7; 36]).unwrap(),
//!     esn: true,
//!     replay_window: 1024,
//!     lifetime: Lifetime::default(),
//!     encap: None,
//!     local_addr: "192.0.2.1".parse().unwrap(),
//!     remote_addr: "192.0.2.1".parse().unwrap(),
//!     ts_local: vec![TrafficSelector::any_v4()],
//!     ts_remote: vec![TrafficSelector::any_v4()],
//! };
//! // In real life these come from IKE's ChildSaEstablished event.
//! let out = engine.install(now, params(0x1000, Direction::Outbound)).unwrap();
//! let _in = engine.install(now, params(0x1000, Direction::Inbound)).unwrap();
//!
//! // Outbound: read the inner packet from the TUN device at offset `headroom`.
//! let head = engine.headroom(out).unwrap();
//! let mut buf = [0u8; 2048];
//! let inner = [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
//! buf[head..head + 20].copy_from_slice(&inner);
//! let wire = engine.encapsulate(now, out, &mut buf, head..head + 20).unwrap();
//! // ... send buf[wire] on the ESP (or UDP-4500) socket ...
//!
//! // Inbound: decapsulate what the socket received, in place.
//! let mut rx = buf[wire].to_vec();
//! let got = engine.decapsulate(now, &mut rx).unwrap();
//! assert_eq!(&rx[got.range], &inner);
//!
//! // After every call: drain events (hand them to IKE), then re-arm the timer.
//! while let Some(ev) = engine.poll_event() {
//!     match ev {
//!         EspEvent::SoftLifetime { .. } | EspEvent::SeqNearExhaustion { .. } => { /* rekey */ }
//!         _ => { /* hard expiry: delete the Child SA */ }
//!     }
//! }
//! if let Some(deadline) = engine.poll_timeout() {
//!     // when the timer fires: engine.handle_timeout(deadline_or_now)
//!     engine.handle_timeout(deadline);
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cipher;
pub mod decap;
pub mod encap;
pub mod engine;
pub mod error;
pub mod event;
mod lifetime;
pub mod packet;
pub mod sad;
pub mod stats;

pub use engine::{
    Decapsulated, EspConfig, EspEngine, MAX_HEADROOM, MAX_TAILROOM, Output, SEQ_WARN_MARGIN,
};
pub use error::{DropReason, EncapError, InstallError};
pub use event::{EspEvent, LifetimeKind};
pub use ipsec_core::sa::{Direction, EspSaParams, EspTransform, Lifetime, Mode, UdpEncap};
pub use sad::SaId;
pub use stats::{DropCounters, EngineStats, SaStats};

//! IKEv2 (RFC 7296) for a userspace IPsec stack: the wire codec ([`message`]), proposal
//! negotiation ([`proposal`]), the key schedule ([`keys`], [`auth`]) and [`Endpoint`], the
//! sans-IO state machine that negotiates IKE and Child SAs and hands their keys to an ESP
//! data plane such as the `esp` crate.
//!
//! # The run loop
//!
//! [`Endpoint`] never opens a socket or reads a clock. The caller:
//!
//! 1. hands it each UDP datagram received on port 500 or 4500 ([`Endpoint::handle`]; on
//!    4500 use `ipsec_core::natt::classify_udp_4500` first and give it the IKE ones,
//!    non-ESP marker included), and calls [`Endpoint::handle_timeout`] when the deadline
//!    from [`Endpoint::poll_timeout`] has passed;
//! 2. after every such call or command, drains [`Endpoint::poll_event`] **first**:
//!    [`Event::ChildSaEstablished`] carries both directions' `EspSaParams` to install
//!    ([`Event::ChildSaInboundReady`]: only the inbound one, during a rekey we answered),
//!    [`Event::ChildSaDeleted`] the SPIs to remove (after a rekey the inbound one only at
//!    the [`Event::ChildSaInboundExpired`] that follows, for late packets);
//! 3. then sends what [`Endpoint::poll_transmit`] returns;
//! 4. sleeps until the earliest of [`Endpoint::poll_timeout`] and the ESP engine's.
//!
//! Two peers in one process, with the `esp` engine as data plane:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use ike::proposal::parse_proposals;
//! use ike::message::ProtocolId;
//! use ike::{ChildConfig, Datagram, Endpoint, EndpointConfig, Event, PeerConfig};
//! use ipsec_core::{RustCrypto, SecretBytes};
//!
//! fn peer(me: &str, them: &str, mine: &str, theirs: &str) -> Arc<PeerConfig> {
//!     Arc::new(PeerConfig {
//!         name: format!("{me} to {them}"),
//!         local_id: ike::config::parse_identity(me).unwrap(),
//!         remote_id: Some(ike::config::parse_identity(them).unwrap()),
//!         psk: SecretBytes::from_slice(b"a pre-shared key of 32 octets..."),
//!         remote_addrs: vec![them.parse().unwrap()],
//!         ike_proposals: parse_proposals(ProtocolId::IKE, "aes256gcm16-prfsha256-x25519").unwrap(),
//!         force_encap: false,
//!         dpd_delay: None,
//!         initial_contact: true,
//!         rekey_time: None,
//!         life_time: None,
//!         children: vec![ChildConfig::new(
//!             "net",
//!             vec![mine.parse().unwrap()],
//!             vec![theirs.parse().unwrap()],
//!             parse_proposals(ProtocolId::ESP, "aes256gcm16").unwrap(),
//!         )],
//!     })
//! }
//!
//! let provider = Arc::new(RustCrypto::new());
//! let (a_cfg, b_cfg) = (peer("fd00::1", "fd00::2", "fd01::/64", "fd02::/64"),
//!                       peer("fd00::2", "fd00::1", "fd02::/64", "fd01::/64"));
//! let endpoint = |cfg: &Arc<PeerConfig>| {
//!     let config = EndpointConfig { peers: vec![cfg.clone()], ..EndpointConfig::default() };
//!     Endpoint::new(Arc::new(config), provider.clone())
//! };
//! let mut nodes = [
//!     (endpoint(&a_cfg), esp::EspEngine::new(provider.clone())),
//!     (endpoint(&b_cfg), esp::EspEngine::new(provider.clone())),
//! ];
//! let now = Instant::now();
//! nodes[0].0.connect(now, a_cfg.clone(), "[fd00::1]:500".parse().unwrap(),
//!                    "[fd00::2]:500".parse().unwrap()).unwrap();
//!
//! let mut wire = Vec::new(); // (destination node, Transmit, bytes)
//! let mut children = 0;
//! loop {
//!     for (i, (ike, esp)) in nodes.iter_mut().enumerate() {
//!         // Events first: install keys before anything is sent.
//!         while let Some(event) = ike.poll_event() {
//!             if let Event::ChildSaEstablished(child) = event {
//!                 esp.install(now, child.inbound.clone()).unwrap();
//!                 esp.install(now, child.outbound.clone()).unwrap();
//!                 children += 1;
//!             }
//!         }
//!         let mut buf = Vec::new();
//!         while let Some(t) = ike.poll_transmit(now, &mut buf) {
//!             wire.push((1 - i, t, buf.clone()));
//!         }
//!     }
//!     let Some((to, t, bytes)) = wire.pop() else { break };
//!     // The receiver sees the sender's addresses swapped.
//!     nodes[to].0.handle(now, Datagram { local: t.remote, remote: t.local, payload: &bytes });
//! }
//! assert_eq!(children, 2); // one Child SA, installed on both sides
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod cookie;
mod endpoint;
pub mod event;
mod exchange;
mod ike_sa;
pub mod keys;
pub mod message;
pub mod nat;
pub mod proposal;

pub use config::{ChildConfig, EndpointConfig, Identity, PeerConfig, RetransmitConfig};
pub use endpoint::{
    ChildSaSummary, CommandError, Datagram, DropReason, Endpoint, EndpointStats, Transmit,
};
pub use event::{ChildSaId, ChildSaInfo, CloseReason, Event, IkeSaHandle};

//! IKEv2 (RFC 7296): wire codec, proposal negotiation, key schedule and (later) the sans-IO
//! state machine.
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

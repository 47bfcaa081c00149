//! IKEv2 (RFC 7296): wire codec, proposal negotiation, key schedule and (later) the sans-IO
//! state machine.
#![forbid(unsafe_code)]

pub mod auth;
pub mod keys;
pub mod message;
pub mod proposal;

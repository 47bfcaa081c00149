//! The IKEv2 exchanges, one module each (RFC 7296 §1.2–§1.4).
//!
//! Every handler is an `impl` block on [`crate::Endpoint`], taking the IKE SA out of the
//! table for the duration of the exchange step.

mod child;
mod create_child_sa;
mod ike_auth;
mod ike_sa_init;
mod informational;

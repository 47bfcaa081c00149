//! IKEv2 (RFC 7296).
#![forbid(unsafe_code)]

//! ESP (RFC 4303) data plane.
#![forbid(unsafe_code)]

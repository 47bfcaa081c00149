//! Shared vocabulary of the ipsec-rs stack: what the IKEv2 control plane (`ike`) and the ESP
//! data plane (`esp`) both speak. No I/O, no clock, no threads.
//!
//! * [`Spi`], [`IkeSpi`] — SA identifiers (RFC 4303 §2.1, RFC 7296 §3.1).
//! * [`transform`] — IANA transform identifiers (RFC 7296 §3.3.2).
//! * [`ts`] — traffic selectors and their narrowing (RFC 7296 §2.9, §3.13.1).
//! * [`sa`] — [`EspSaParams`], the plain data IKE hands to ESP per direction.
//! * [`SecretBytes`] — zeroizing, redacted key material.
//! * [`replay`] — the ESN-aware anti-replay window (RFC 4303 §3.4.3, RFC 6479).
//! * [`natt`] — classifying UDP-4500 payloads (RFC 3948 §2).
//! * [`crypto`] — the crypto provider traits and the default RustCrypto provider.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod natt;
pub mod replay;
pub mod sa;
pub mod secret;
pub mod spi;
pub mod transform;
pub mod ts;

#[cfg(feature = "aws-lc")]
pub use crypto::aws_lc::AwsLc;
pub use crypto::rustcrypto::RustCrypto;
pub use crypto::{CryptoError, CryptoProvider};
pub use sa::{EspSaParams, EspTransform, Lifetime, Mode};
pub use secret::SecretBytes;
pub use spi::{IkeSpi, Spi};
pub use ts::TrafficSelector;

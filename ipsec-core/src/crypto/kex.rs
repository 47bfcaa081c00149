//! Ephemeral key exchange methods (RFC 7296 §1.2, KE payload §3.4).
//!
//! * Curve25519, group 31 (RFC 8031): 32-octet public values; an all-zero shared secret
//!   (low-order peer point) is rejected (RFC 8031 §2.3).

use x25519_dalek::{PublicKey, StaticSecret};

use super::{CryptoError, KeyExchange};
use crate::SecretBytes;
use crate::transform::KeId;

/// Starts a key exchange for `group`, drawing the private value from `random`.
pub fn start(
    group: KeId,
    random: &mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>,
) -> Result<Box<dyn KeyExchange>, CryptoError> {
    match group {
        KeId::CURVE25519 => Ok(Box::new(X25519::new(random)?)),
        _ => Err(CryptoError::Unsupported),
    }
}

/// X25519 (RFC 7748, RFC 8031).
pub struct X25519 {
    secret: StaticSecret,
    public: [u8; 32],
}

impl X25519 {
    fn new(
        random: &mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>,
    ) -> Result<Self, CryptoError> {
        let mut raw = zeroize::Zeroizing::new([0u8; 32]);
        random(&mut raw[..])?;
        let secret = StaticSecret::from(*raw);
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Self { secret, public })
    }
}

impl KeyExchange for X25519 {
    fn group(&self) -> KeId {
        KeId::CURVE25519
    }

    fn public_value(&self) -> &[u8] {
        &self.public
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        let peer: [u8; 32] = peer.try_into().map_err(|_| CryptoError::InvalidPeerValue)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(CryptoError::InvalidPeerValue);
        }
        Ok(SecretBytes::from_slice(shared.as_bytes()))
    }
}

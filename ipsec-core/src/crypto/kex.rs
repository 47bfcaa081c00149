//! Ephemeral key exchange methods (RFC 7296 §1.2, KE payload §3.4).
//!
//! * Curve25519, group 31 (RFC 8031): 32-octet public values; an all-zero shared secret
//!   (low-order peer point) is rejected (RFC 8031 §2.3).
//! * 256-bit random ECP group (NIST P-256), group 19 (RFC 5903): the KE data is the
//!   affine point as `x ‖ y`, 64 octets, with no SEC1 point-format octet (RFC 5903 §7); the
//!   shared secret g^ir is the x coordinate of the product point, 32 octets (RFC 5903 §9).
//!   The peer's point must lie on the curve and must not be the point at infinity
//!   (RFC 6989 §2.3); both are checked when it is decoded.
//! * 2048-bit MODP group, group 14 (RFC 3526 §3): the KE data is the 256-octet big-endian
//!   public value g^x mod p, left-padded with zeros (RFC 7296 §3.4). The peer's value must
//!   satisfy 1 < y < p−1 (RFC 6989 §2.1); because p is a safe prime, that check suffices
//!   and no subgroup test is needed. The private exponent is 256 random bits, twice the
//!   ~112-bit strength of the group (RFC 3526 §8, NIST SP 800-56A rule of 2×strength). The
//!   modular exponentiation is constant time (Montgomery form, `crypto-bigint`). The shared
//!   secret is left-padded to 256 octets (RFC 7296 §2.14, RFC 4306 convention).
//!
//! Every private value is drawn from the caller's random source (the provider's
//! `fill_random`), so a seeded provider or a test closure that returns fixed bytes gives
//! reproducible key pairs. Private values are zeroized on drop.

use std::sync::OnceLock;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U256, U2048};
use p256::elliptic_curve::sec1::ToSec1Point;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::{CryptoError, KeyExchange};
use crate::SecretBytes;
use crate::transform::KeId;

/// The random source a key exchange draws its private value from.
pub type RandomSource<'a> = &'a mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>;

/// The KE methods implemented in this module, in preference order.
pub const SUPPORTED_GROUPS: &[KeId] = &[KeId::CURVE25519, KeId::ECP_256, KeId::MODP_2048];

/// Starts a key exchange for `group`, drawing the private value from `random`.
pub fn start(group: KeId, random: RandomSource<'_>) -> Result<Box<dyn KeyExchange>, CryptoError> {
    match group {
        KeId::CURVE25519 => Ok(Box::new(X25519::new(random)?)),
        KeId::ECP_256 => Ok(Box::new(Ecp256::new(random)?)),
        KeId::MODP_2048 => Ok(Box::new(Modp2048::new(random)?)),
        _ => Err(CryptoError::Unsupported),
    }
}

/// Length of the KE payload data for `group` (RFC 7296 §3.4 and the group's RFC), or `None`
/// for a group this module does not implement.
pub fn public_value_len(group: KeId) -> Option<usize> {
    match group {
        KeId::CURVE25519 => Some(32),
        KeId::ECP_256 => Some(ECP256_PUBLIC_LEN),
        KeId::MODP_2048 => Some(MODP2048_LEN),
        _ => None,
    }
}

/// X25519 (RFC 7748, RFC 8031).
pub struct X25519 {
    secret: StaticSecret,
    public: [u8; 32],
}

impl X25519 {
    fn new(random: RandomSource<'_>) -> Result<Self, CryptoError> {
        let mut raw = Zeroizing::new([0u8; 32]);
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

/// Length of an ECP-256 KE payload: `x ‖ y` (RFC 5903 §7).
const ECP256_PUBLIC_LEN: usize = 64;
/// Attempts at drawing a P-256 scalar in `[1, n−1]` before giving up; each attempt fails
/// with probability < 2^-32, so running out means the random source is broken.
const ECP256_MAX_DRAWS: usize = 8;

/// ECDH on NIST P-256, the 256-bit random ECP group (RFC 5903).
pub struct Ecp256 {
    secret: p256::SecretKey,
    public: [u8; ECP256_PUBLIC_LEN],
}

impl Ecp256 {
    fn new(random: RandomSource<'_>) -> Result<Self, CryptoError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        for _ in 0..ECP256_MAX_DRAWS {
            random(&mut raw[..])?;
            // Rejection sampling: values that are zero or not below the group order are
            // refused by `from_slice` and drawn again, so the scalar is uniform.
            if let Ok(secret) = p256::SecretKey::from_slice(&raw[..]) {
                let point = secret.public_key().as_affine().to_sec1_point(false);
                let sec1 = point.as_bytes();
                // Uncompressed SEC1: 0x04 ‖ x ‖ y; the KE payload drops the format octet.
                let mut public = [0u8; ECP256_PUBLIC_LEN];
                public.copy_from_slice(&sec1[1..]);
                return Ok(Self { secret, public });
            }
        }
        Err(CryptoError::RandomFailure)
    }
}

impl KeyExchange for Ecp256 {
    fn group(&self) -> KeId {
        KeId::ECP_256
    }

    fn public_value(&self) -> &[u8] {
        &self.public
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        if peer.len() != ECP256_PUBLIC_LEN {
            return Err(CryptoError::InvalidPeerValue);
        }
        let mut sec1 = [0u8; 1 + ECP256_PUBLIC_LEN];
        sec1[0] = 0x04;
        sec1[1..].copy_from_slice(peer);
        // Decoding checks that the point is on the curve and is not the identity
        // (RFC 6989 §2.3); P-256 has cofactor 1, so no subgroup check is needed.
        let peer =
            p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| CryptoError::InvalidPeerValue)?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        Ok(SecretBytes::from_slice(
            shared.raw_secret_bytes().as_slice(),
        ))
    }
}

/// Length of a MODP-2048 public value and shared secret in octets.
const MODP2048_LEN: usize = 256;

/// The 2048-bit MODP prime p = 2^2048 − 2^1984 − 1 + 2^64 · (⌊2^1918 π⌋ + 124476)
/// (RFC 3526 §3); the generator is 2.
const MODP2048_P_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// The MODP-2048 prime.
const MODP2048_P: U2048 = U2048::from_be_hex(MODP2048_P_HEX);

fn modp2048_params() -> &'static FixedMontyParams<{ U2048::LIMBS }> {
    static PARAMS: OnceLock<FixedMontyParams<{ U2048::LIMBS }>> = OnceLock::new();
    PARAMS.get_or_init(|| {
        // The modulus is public, so the variable-time setup is fine.
        FixedMontyParams::new_vartime(Odd::new(MODP2048_P).expect("the MODP prime is odd"))
    })
}

/// Finite-field Diffie-Hellman in the 2048-bit MODP group (RFC 3526 §3).
pub struct Modp2048 {
    exponent: Zeroizing<[u8; 32]>,
    public: Box<[u8; MODP2048_LEN]>,
}

impl Modp2048 {
    fn new(random: RandomSource<'_>) -> Result<Self, CryptoError> {
        let mut exponent = Zeroizing::new([0u8; 32]);
        random(&mut exponent[..])?;
        // An exponent of 0 or 1 would give a public value the peer must reject; it occurs
        // with probability 2^-255, i.e. only with a broken random source.
        if exponent[..31].iter().all(|&b| b == 0) && exponent[31] < 2 {
            return Err(CryptoError::RandomFailure);
        }
        let params = modp2048_params();
        let g = FixedMontyForm::new(&U2048::from_u8(2), params);
        let public = Box::new(modp_pow(&g, &exponent));
        Ok(Self { exponent, public })
    }
}

/// `base^exponent mod p` as 256 big-endian octets, in constant time.
fn modp_pow(base: &FixedMontyForm<{ U2048::LIMBS }>, exponent: &[u8; 32]) -> [u8; MODP2048_LEN] {
    let mut x = U256::from_be_slice(exponent);
    let mut y = base.pow(&x).retrieve();
    x.zeroize();
    let mut out = [0u8; MODP2048_LEN];
    out.copy_from_slice(y.to_be_bytes().as_ref());
    y.zeroize();
    out
}

impl KeyExchange for Modp2048 {
    fn group(&self) -> KeId {
        KeId::MODP_2048
    }

    fn public_value(&self) -> &[u8] {
        &self.public[..]
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        // RFC 7296 §3.4: the KE data has exactly the length of the prime.
        if peer.len() != MODP2048_LEN {
            return Err(CryptoError::InvalidPeerValue);
        }
        let y = U2048::from_be_slice(peer);
        let p_minus_1 = MODP2048_P.wrapping_sub(&U2048::ONE);
        // RFC 6989 §2.1: 1 < y < p−1. Public data, so a variable-time comparison is fine.
        if y <= U2048::ONE || y >= p_minus_1 {
            return Err(CryptoError::InvalidPeerValue);
        }
        let base = FixedMontyForm::new(&y, modp2048_params());
        let mut shared = modp_pow(&base, &self.exponent);
        let secret = SecretBytes::from_slice(&shared);
        shared.zeroize();
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(bytes: &[u8]) -> impl FnMut(&mut [u8]) -> Result<(), CryptoError> + '_ {
        move |out: &mut [u8]| {
            out.copy_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn modp_public_is_padded_and_peer_checks_apply() {
        // Exponent 1 is refused; exponent 2 gives g^2 = 4, left-padded.
        let mut one = [0u8; 32];
        one[31] = 1;
        assert!(start(KeId::MODP_2048, &mut fixed(&one)).is_err());
        let mut two = [0u8; 32];
        two[31] = 2;
        let kx = start(KeId::MODP_2048, &mut fixed(&two)).unwrap();
        let mut four = [0u8; 256];
        four[255] = 4;
        assert_eq!(kx.public_value(), &four[..]);
        // (g^2)^2 = 16.
        let s = kx.complete(&four).unwrap();
        assert_eq!(s.len(), 256);
        assert_eq!(s.expose()[255], 16);
        assert!(s.expose()[..255].iter().all(|&b| b == 0));
    }

    #[test]
    fn supported_groups_start() {
        for &g in SUPPORTED_GROUPS {
            let kx = start(g, &mut fixed(&[0x42; 32])).unwrap();
            assert_eq!(kx.group(), g);
            assert_eq!(Some(kx.public_value().len()), public_value_len(g));
        }
        assert_eq!(
            start(KeId::ECP_384, &mut fixed(&[1; 32])).err(),
            Some(CryptoError::Unsupported)
        );
    }
}

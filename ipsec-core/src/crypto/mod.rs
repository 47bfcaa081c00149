//! The crypto provider: the primitives the protocols need, and nothing more.
//!
//! The protocol crates own every construction (ESP nonce and AAD layout, prf+, SKEYSEED,
//! KEYMAT, AUTH); a provider only supplies primitives, keyed once per SA:
//!
//! * [`AeadKey`] — AES-GCM-16 (RFC 4106 / RFC 5282) and ChaCha20-Poly1305 (RFC 7634), seal and
//!   open in place with a detached 16-octet tag and a 12-octet nonce (salt ‖ IV).
//! * [`CbcKey`] and [`MacKey`] — AES-CBC (RFC 3602) with HMAC-SHA2 integrity (RFC 4868).
//! * [`CryptoProvider::prf`] — the IKEv2 PRFs (HMAC-SHA2-256/384/512).
//! * [`KeyExchange`] — ephemeral Diffie-Hellman for each KE method.
//! * [`CryptoProvider::fill_random`] — the only source of randomness in the library.
//!
//! The ESP engine is generic over the provider, so the per-packet path calls the AEAD with
//! static dispatch and no allocation; the key object is created once in `install`.

#[cfg(feature = "aws-lc")]
pub mod aws_lc;
pub mod kex;
pub mod rustcrypto;

use crate::SecretBytes;
use crate::transform::{EncrId, IntegId, KeId, PrfId};

/// Length of every AEAD tag (ICV) this library negotiates: AES-GCM-16 and ChaCha20-Poly1305.
pub const AEAD_TAG_LEN: usize = 16;
/// Length of the AEAD nonce: 4-octet salt ‖ 8-octet IV (RFC 4106 §4, RFC 7634 §2).
pub const AEAD_NONCE_LEN: usize = 12;
/// Length of the salt taken from keying material (RFC 4106 §8.1, RFC 7634 §2).
pub const AEAD_SALT_LEN: usize = 4;
/// AES block size, also the AES-CBC IV length (RFC 3602 §2).
pub const AES_BLOCK_LEN: usize = 16;

/// A failure of a cryptographic primitive.
///
/// Deliberately coarse: an authentication failure must not reveal why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The tag or ICV did not verify.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A key, nonce or buffer had the wrong length.
    #[error("invalid length")]
    InvalidLength,
    /// The algorithm is not offered by this provider.
    #[error("unsupported algorithm")]
    Unsupported,
    /// The peer's key exchange value is invalid (RFC 6989 checks, low-order points).
    #[error("invalid peer public value")]
    InvalidPeerValue,
    /// The random source failed.
    #[error("random source failure")]
    RandomFailure,
}

/// An AEAD algorithm as negotiated: the ENCR transform with its key length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    /// ENCR_AES_GCM_16 with a 128-bit key.
    Aes128Gcm,
    /// ENCR_AES_GCM_16 with a 256-bit key.
    Aes256Gcm,
    /// ENCR_CHACHA20_POLY1305 (256-bit key).
    ChaCha20Poly1305,
}

impl AeadAlgorithm {
    /// Maps a negotiated ENCR transform and its Key Length attribute (bits) to an algorithm.
    pub fn from_transform(id: EncrId, key_bits: Option<u16>) -> Option<Self> {
        match (id, key_bits) {
            (EncrId::AES_GCM_16, Some(128)) => Some(Self::Aes128Gcm),
            (EncrId::AES_GCM_16, Some(256)) => Some(Self::Aes256Gcm),
            (EncrId::CHACHA20_POLY1305, None) => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The ENCR transform identifier.
    pub fn transform_id(self) -> EncrId {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => EncrId::AES_GCM_16,
            Self::ChaCha20Poly1305 => EncrId::CHACHA20_POLY1305,
        }
    }

    /// The Key Length attribute in bits, if the transform carries one.
    pub fn key_bits(self) -> Option<u16> {
        match self {
            Self::Aes128Gcm => Some(128),
            Self::Aes256Gcm => Some(256),
            Self::ChaCha20Poly1305 => None,
        }
    }

    /// Cipher key length in octets (the salt comes on top).
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// Length of keying material taken from prf+ for this transform: key ‖ 4-octet salt.
    pub fn keymat_len(self) -> usize {
        self.key_len() + AEAD_SALT_LEN
    }
}

/// An AEAD key bound once per SA. Both operations work in place on caller memory.
pub trait AeadKey: Send + Sync + 'static {
    /// Encrypts `in_out` in place and writes the tag.
    fn seal_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError>;

    /// Verifies `tag` and decrypts `in_out` in place. On failure the contents of `in_out`
    /// are unspecified and must be discarded.
    fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError>;
}

/// An AES-CBC key (RFC 3602), 128, 192 or 256 bits.
pub trait CbcKey: Send + Sync + 'static {
    /// Encrypts whole blocks in place; `in_out.len()` must be a multiple of 16.
    fn encrypt_in_place(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// Decrypts whole blocks in place; `in_out.len()` must be a multiple of 16.
    fn decrypt_in_place(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError>;
}

/// A keyed HMAC integrity transform with a truncated ICV (RFC 4868 §2).
pub trait MacKey: Send + Sync + 'static {
    /// Length of the truncated ICV in octets.
    fn icv_len(&self) -> usize;
    /// Computes the truncated ICV over the concatenation of `parts` into `icv`
    /// (`icv.len()` must equal [`MacKey::icv_len`]).
    fn sign(&self, parts: &[&[u8]], icv: &mut [u8]) -> Result<(), CryptoError>;
    /// Verifies a truncated ICV in constant time.
    fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError>;
}

/// One side of an ephemeral key exchange (RFC 7296 §1.2, KE payload).
pub trait KeyExchange: Send {
    /// The KE method.
    fn group(&self) -> KeId;
    /// Our public value as carried in the KE payload (RFC 7296 §3.4 and the group's RFC).
    fn public_value(&self) -> &[u8];
    /// Validates the peer's public value (RFC 6989, RFC 8031 §2.3) and computes g^ir.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SecretBytes, CryptoError>;
}

/// Everything the protocol crates need from cryptography.
///
/// Associated key types keep the ESP packet path monomorphic: no `dyn` call and no
/// allocation per packet. IKE (low rate) uses `Box<dyn KeyExchange>` for its ephemeral keys.
pub trait CryptoProvider: Send + Sync + core::fmt::Debug + 'static {
    /// AEAD key type.
    type Aead: AeadKey;
    /// AES-CBC key type.
    type Cbc: CbcKey;
    /// HMAC integrity key type.
    type Mac: MacKey;

    /// Binds an AEAD key (`key.len()` must be [`AeadAlgorithm::key_len`], salt excluded).
    fn aead(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Self::Aead, CryptoError>;
    /// Binds an AES-CBC key of 16, 24 or 32 octets.
    fn cbc(&self, key: &[u8]) -> Result<Self::Cbc, CryptoError>;
    /// Binds an integrity key for `alg` (key length per RFC 4868 §2.1.1).
    fn mac(&self, alg: IntegId, key: &[u8]) -> Result<Self::Mac, CryptoError>;
    /// Computes `prf(key, data[0] | data[1] | …)` into `out`, whose length must equal the
    /// PRF output length; returns that length. HMAC PRFs accept any key length.
    fn prf(
        &self,
        alg: PrfId,
        key: &[u8],
        data: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, CryptoError>;
    /// Starts an ephemeral key exchange for `group`, drawing the private value from
    /// [`CryptoProvider::fill_random`].
    fn key_exchange(&self, group: KeId) -> Result<Box<dyn KeyExchange>, CryptoError>;
    /// Fills `out` with cryptographically secure random bytes (or a seeded stream in tests).
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;

    /// KE methods this provider implements, in its preference order.
    fn supported_groups(&self) -> &'static [KeId] {
        &[KeId::CURVE25519, KeId::ECP_256, KeId::MODP_2048]
    }
}

/// Builds the 12-octet AEAD nonce `salt ‖ iv` (RFC 4106 §4, RFC 5282 §4, RFC 7634 §2).
#[inline]
pub fn aead_nonce(salt: &[u8; AEAD_SALT_LEN], iv: &[u8; 8]) -> [u8; AEAD_NONCE_LEN] {
    let mut n = [0u8; AEAD_NONCE_LEN];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    n
}

//! The default provider: pure-Rust RustCrypto primitives.
//!
//! AES-GCM and ChaCha20-Poly1305 come from `aes-gcm` 0.11 / `chacha20poly1305` 0.11 (aead 0.6
//! in-out API), AES-CBC is the RFC 3602 chaining written over the `aes` block cipher, HMAC
//! from `hmac` + `sha2`, key exchange from [`super::kex`]. Randomness is the OS source, or a
//! ChaCha20 keystream from a fixed seed for reproducible tests ([`RustCrypto::with_seed`]).

use std::sync::Mutex;

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes_gcm::aead::AeadInOut;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use super::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, AES_BLOCK_LEN, AeadAlgorithm, AeadKey, CbcKey, CryptoError,
    CryptoProvider, KeyExchange, MacKey, kex,
};
use crate::transform::{IntegId, KeId, PrfId};

/// The RustCrypto provider.
#[derive(Debug, Default)]
pub struct RustCrypto {
    seeded: Option<Mutex<chacha20::ChaCha20>>,
}

impl RustCrypto {
    /// A provider drawing randomness from the operating system.
    pub fn new() -> Self {
        Self { seeded: None }
    }

    /// A provider whose randomness is a ChaCha20 keystream keyed by `seed`.
    ///
    /// Deterministic: for tests, simulations and fuzzing only. Never use it on a network.
    pub fn with_seed(seed: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..24].copy_from_slice(b"ipsec-rs/seeded!");
        let cipher = chacha20::ChaCha20::new(&key.into(), &[0u8; 12].into());
        Self {
            seeded: Some(Mutex::new(cipher)),
        }
    }
}

/// An AEAD key of the RustCrypto provider; the variant is fixed at install time.
pub enum RustCryptoAead {
    /// AES-128-GCM.
    Aes128Gcm(Box<aes_gcm::Aes128Gcm>),
    /// AES-256-GCM.
    Aes256Gcm(Box<aes_gcm::Aes256Gcm>),
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305(Box<chacha20poly1305::ChaCha20Poly1305>),
}

macro_rules! with_aead {
    ($self:expr, $k:ident => $body:expr) => {
        match $self {
            RustCryptoAead::Aes128Gcm($k) => $body,
            RustCryptoAead::Aes256Gcm($k) => $body,
            RustCryptoAead::ChaCha20Poly1305($k) => $body,
        }
    };
}

impl AeadKey for RustCryptoAead {
    #[inline]
    fn seal_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        let t = with_aead!(self, k => k
            .encrypt_inout_detached(nonce.into(), aad, in_out.into())
            .map_err(|_| CryptoError::InvalidLength)?
            .into());
        *tag = t;
        Ok(())
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        with_aead!(self, k => k
            .decrypt_inout_detached(nonce.into(), aad, in_out.into(), tag.into())
            .map_err(|_| CryptoError::AuthenticationFailed))
    }
}

/// An AES-CBC key (RFC 3602): CBC chaining over the `aes` block cipher.
pub enum RustCryptoCbc {
    /// AES-128.
    Aes128(Box<aes::Aes128>),
    /// AES-192.
    Aes192(Box<aes::Aes192>),
    /// AES-256.
    Aes256(Box<aes::Aes256>),
}

macro_rules! with_cbc {
    ($self:expr, $k:ident => $body:expr) => {
        match $self {
            RustCryptoCbc::Aes128($k) => $body,
            RustCryptoCbc::Aes192($k) => $body,
            RustCryptoCbc::Aes256($k) => $body,
        }
    };
}

fn xor_block(dst: &mut [u8], src: &[u8; AES_BLOCK_LEN]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

impl CbcKey for RustCryptoCbc {
    fn encrypt_in_place(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if !in_out.len().is_multiple_of(AES_BLOCK_LEN) {
            return Err(CryptoError::InvalidLength);
        }
        let mut chain = *iv;
        for block in in_out.chunks_exact_mut(AES_BLOCK_LEN) {
            xor_block(block, &chain);
            with_cbc!(self, k => k.encrypt_block(block.try_into().expect("16-byte chunk")));
            chain.copy_from_slice(block);
        }
        Ok(())
    }

    fn decrypt_in_place(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if !in_out.len().is_multiple_of(AES_BLOCK_LEN) {
            return Err(CryptoError::InvalidLength);
        }
        let mut chain = *iv;
        for block in in_out.chunks_exact_mut(AES_BLOCK_LEN) {
            let mut next = [0u8; AES_BLOCK_LEN];
            next.copy_from_slice(block);
            with_cbc!(self, k => k.decrypt_block(block.try_into().expect("16-byte chunk")));
            xor_block(block, &chain);
            chain = next;
        }
        Ok(())
    }
}

/// A keyed HMAC-SHA2 integrity transform (RFC 4868).
#[derive(Clone)]
pub enum RustCryptoMac {
    /// AUTH_HMAC_SHA2_256_128.
    Sha256(Box<Hmac<Sha256>>),
    /// AUTH_HMAC_SHA2_384_192.
    Sha384(Box<Hmac<Sha384>>),
    /// AUTH_HMAC_SHA2_512_256.
    Sha512(Box<Hmac<Sha512>>),
}

impl RustCryptoMac {
    fn full(&self, parts: &[&[u8]], out: &mut [u8; 64]) -> usize {
        macro_rules! run {
            ($m:expr) => {{
                let mut m = (**$m).clone();
                for p in parts {
                    m.update(p);
                }
                let tag = m.finalize().into_bytes();
                out[..tag.len()].copy_from_slice(&tag);
                tag.len()
            }};
        }
        match self {
            Self::Sha256(m) => run!(m),
            Self::Sha384(m) => run!(m),
            Self::Sha512(m) => run!(m),
        }
    }
}

impl MacKey for RustCryptoMac {
    fn icv_len(&self) -> usize {
        match self {
            Self::Sha256(_) => 16,
            Self::Sha384(_) => 24,
            Self::Sha512(_) => 32,
        }
    }

    fn sign(&self, parts: &[&[u8]], icv: &mut [u8]) -> Result<(), CryptoError> {
        if icv.len() != self.icv_len() {
            return Err(CryptoError::InvalidLength);
        }
        let mut full = [0u8; 64];
        self.full(parts, &mut full);
        icv.copy_from_slice(&full[..icv.len()]);
        Ok(())
    }

    fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        use subtle::ConstantTimeEq;
        if icv.len() != self.icv_len() {
            return Err(CryptoError::AuthenticationFailed);
        }
        let mut full = [0u8; 64];
        self.full(parts, &mut full);
        if bool::from(full[..icv.len()].ct_eq(icv)) {
            Ok(())
        } else {
            Err(CryptoError::AuthenticationFailed)
        }
    }
}

fn hmac_into<M: Mac + KeyInit>(
    key: &[u8],
    data: &[&[u8]],
    out: &mut [u8],
) -> Result<usize, CryptoError> {
    let mut m = <M as KeyInit>::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?;
    for d in data {
        m.update(d);
    }
    let tag = m.finalize().into_bytes();
    if out.len() != tag.len() {
        return Err(CryptoError::InvalidLength);
    }
    out.copy_from_slice(&tag);
    Ok(tag.len())
}

impl CryptoProvider for RustCrypto {
    type Aead = RustCryptoAead;
    type Cbc = RustCryptoCbc;
    type Mac = RustCryptoMac;

    fn aead(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Self::Aead, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidLength);
        }
        let bad = |_| CryptoError::InvalidLength;
        Ok(match alg {
            AeadAlgorithm::Aes128Gcm => RustCryptoAead::Aes128Gcm(Box::new(
                aes_gcm::Aes128Gcm::new_from_slice(key).map_err(bad)?,
            )),
            AeadAlgorithm::Aes256Gcm => RustCryptoAead::Aes256Gcm(Box::new(
                aes_gcm::Aes256Gcm::new_from_slice(key).map_err(bad)?,
            )),
            AeadAlgorithm::ChaCha20Poly1305 => RustCryptoAead::ChaCha20Poly1305(Box::new(
                chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(bad)?,
            )),
        })
    }

    fn cbc(&self, key: &[u8]) -> Result<Self::Cbc, CryptoError> {
        let bad = |_| CryptoError::InvalidLength;
        Ok(match key.len() {
            16 => RustCryptoCbc::Aes128(Box::new(aes::Aes128::new_from_slice(key).map_err(bad)?)),
            24 => RustCryptoCbc::Aes192(Box::new(aes::Aes192::new_from_slice(key).map_err(bad)?)),
            32 => RustCryptoCbc::Aes256(Box::new(aes::Aes256::new_from_slice(key).map_err(bad)?)),
            _ => return Err(CryptoError::InvalidLength),
        })
    }

    fn mac(&self, alg: IntegId, key: &[u8]) -> Result<Self::Mac, CryptoError> {
        let (key_len, _) = alg.key_and_icv_len().ok_or(CryptoError::Unsupported)?;
        if key.len() != key_len {
            return Err(CryptoError::InvalidLength);
        }
        let bad = |_| CryptoError::InvalidLength;
        Ok(match alg {
            IntegId::HMAC_SHA2_256_128 => RustCryptoMac::Sha256(Box::new(
                <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(bad)?,
            )),
            IntegId::HMAC_SHA2_384_192 => RustCryptoMac::Sha384(Box::new(
                <Hmac<Sha384> as KeyInit>::new_from_slice(key).map_err(bad)?,
            )),
            IntegId::HMAC_SHA2_512_256 => RustCryptoMac::Sha512(Box::new(
                <Hmac<Sha512> as KeyInit>::new_from_slice(key).map_err(bad)?,
            )),
            _ => return Err(CryptoError::Unsupported),
        })
    }

    fn prf(
        &self,
        alg: PrfId,
        key: &[u8],
        data: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        match alg {
            PrfId::HMAC_SHA2_256 => hmac_into::<Hmac<Sha256>>(key, data, out),
            PrfId::HMAC_SHA2_384 => hmac_into::<Hmac<Sha384>>(key, data, out),
            PrfId::HMAC_SHA2_512 => hmac_into::<Hmac<Sha512>>(key, data, out),
            _ => Err(CryptoError::Unsupported),
        }
    }

    fn key_exchange(&self, group: KeId) -> Result<Box<dyn KeyExchange>, CryptoError> {
        kex::start(group, &mut |buf| self.fill_random(buf))
    }

    fn supported_groups(&self) -> &'static [KeId] {
        kex::SUPPORTED_GROUPS
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        match &self.seeded {
            Some(stream) => {
                out.fill(0);
                stream
                    .lock()
                    .map_err(|_| CryptoError::RandomFailure)?
                    .apply_keystream(out);
                Ok(())
            }
            None => getrandom::fill(out).map_err(|_| CryptoError::RandomFailure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3602 §4, case #2: AES-128-CBC, two blocks.
    #[test]
    fn aes_cbc_rfc3602_case2() {
        let p = RustCrypto::new();
        let k = p.cbc(&hex("c286696d887c9aa0611bbb3e2025a45a")).unwrap();
        let iv: [u8; 16] = hex("562e17996d093d28ddb3ba695a2e6f58").try_into().unwrap();
        let plain = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let mut buf = plain.clone();
        k.encrypt_in_place(&iv, &mut buf).unwrap();
        assert_eq!(
            buf,
            hex("d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1")
        );
        k.decrypt_in_place(&iv, &mut buf).unwrap();
        assert_eq!(buf, plain);
        assert_eq!(
            k.encrypt_in_place(&iv, &mut [0u8; 15]),
            Err(CryptoError::InvalidLength)
        );
    }

    /// RFC 4868 §2.7.2.1 test case AUTH256-1 (HMAC-SHA-256-128).
    #[test]
    fn hmac_sha256_128_rfc4868() {
        let p = RustCrypto::new();
        let m = p.mac(IntegId::HMAC_SHA2_256_128, &[0x0b; 32]).unwrap();
        let mut icv = [0u8; 16];
        m.sign(&[b"Hi ", b"There"], &mut icv).unwrap();
        assert_eq!(icv.to_vec(), hex("198a607eb44bfbc69903a0f1cf2bbdc5"));
        m.verify(&[b"Hi There"], &icv).unwrap();
        icv[15] ^= 1;
        assert_eq!(
            m.verify(&[b"Hi There"], &icv),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    /// RFC 4106 round trip plus tamper detection, for every AEAD.
    #[test]
    fn aead_roundtrip_and_tamper() {
        let p = RustCrypto::with_seed(7);
        for alg in [
            AeadAlgorithm::Aes128Gcm,
            AeadAlgorithm::Aes256Gcm,
            AeadAlgorithm::ChaCha20Poly1305,
        ] {
            let mut key = vec![0u8; alg.key_len()];
            p.fill_random(&mut key).unwrap();
            let k = p.aead(alg, &key).unwrap();
            let nonce = [9u8; 12];
            let mut buf = *b"attack at dawn!!";
            let mut tag = [0u8; 16];
            k.seal_in_place(&nonce, b"aad", &mut buf, &mut tag).unwrap();
            assert_ne!(&buf, b"attack at dawn!!");
            let mut copy = buf;
            k.open_in_place(&nonce, b"aad", &mut copy, &tag).unwrap();
            assert_eq!(&copy, b"attack at dawn!!");
            let mut copy = buf;
            assert!(k.open_in_place(&nonce, b"aaD", &mut copy, &tag).is_err());
            tag[0] ^= 0x80;
            let mut copy = buf;
            assert!(k.open_in_place(&nonce, b"aad", &mut copy, &tag).is_err());
        }
        assert!(p.aead(AeadAlgorithm::Aes256Gcm, &[0; 16]).is_err());
    }

    #[test]
    fn seeded_rng_is_deterministic_and_os_rng_differs() {
        let (a, b) = (RustCrypto::with_seed(1), RustCrypto::with_seed(1));
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill_random(&mut x).unwrap();
        b.fill_random(&mut y).unwrap();
        assert_eq!(x, y);
        a.fill_random(&mut y).unwrap();
        assert_ne!(x, y, "the stream advances");
        let os = RustCrypto::new();
        os.fill_random(&mut x).unwrap();
        os.fill_random(&mut y).unwrap();
        assert_ne!(x, y);
    }
}

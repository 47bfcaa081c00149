//! `FuzzCrypto`: a crypto provider for fuzzing and corpus replay only.
//!
//! NO SECURITY. NEVER USE OUTSIDE TESTS AND FUZZ TARGETS.
//!
//! Every primitive is deterministic and trivially forgeable, so that a fuzzer can produce
//! messages that pass the integrity checks of an IKE SA or an ESP SA and reach the code
//! behind them:
//!
//! * AEAD: the "ciphertext" is the plaintext XOR [`XOR_BYTE`]; the tag must equal
//!   [`FUZZ_TAG`] (checked, so a truncated or misplaced tag is still refused).
//! * AES-CBC: XOR [`XOR_BYTE`], whole blocks only.
//! * HMAC integrity: the ICV must be [`ICV_BYTE`] repeated.
//! * PRF: the real HMAC-SHA2 of the default provider (deterministic already).
//! * Key exchange: public values drawn from the counter RNG, and the shared secret is the
//!   XOR of both public values (so both sides agree without any group arithmetic).
//! * Randomness: a SplitMix64 counter stream from a fixed seed.
//!
//! This file lives in `fuzz/harness/` and is compiled into the fuzz crate and, through
//! `#[path]`, into the `*fuzz_corpus*` integration tests; no library crate contains it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use ipsec_core::crypto::kex::public_value_len;
use ipsec_core::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, AES_BLOCK_LEN, AeadAlgorithm, AeadKey, CbcKey, CryptoError,
    CryptoProvider, KeyExchange, MacKey,
};
use ipsec_core::transform::{IntegId, KeId, PrfId};
use ipsec_core::{RustCrypto, SecretBytes};

/// The byte every "cipher" XORs the plaintext with.
pub const XOR_BYTE: u8 = 0x5a;
/// The only tag the fuzzing AEAD accepts.
pub const FUZZ_TAG: [u8; AEAD_TAG_LEN] = *b"NO-SECURITY-TAG!";
/// The byte every fuzzing integrity ICV consists of.
pub const ICV_BYTE: u8 = 0xa5;

/// The fuzzing provider (NO SECURITY).
#[derive(Debug)]
pub struct FuzzCrypto {
    counter: AtomicU64,
}

impl FuzzCrypto {
    /// A provider whose random stream starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            counter: AtomicU64::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn xor(buf: &mut [u8]) {
    for b in buf {
        *b ^= XOR_BYTE;
    }
}

/// The fuzzing AEAD key (the key itself is ignored).
pub struct FuzzAead;

impl AeadKey for FuzzAead {
    fn seal_in_place(
        &self,
        _nonce: &[u8; AEAD_NONCE_LEN],
        _aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        xor(in_out);
        *tag = FUZZ_TAG;
        Ok(())
    }

    fn open_in_place(
        &self,
        _nonce: &[u8; AEAD_NONCE_LEN],
        _aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        if *tag != FUZZ_TAG {
            return Err(CryptoError::AuthenticationFailed);
        }
        xor(in_out);
        Ok(())
    }
}

/// The fuzzing AES-CBC key.
pub struct FuzzCbc;

impl CbcKey for FuzzCbc {
    fn encrypt_in_place(
        &self,
        _iv: &[u8; AES_BLOCK_LEN],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if !in_out.len().is_multiple_of(AES_BLOCK_LEN) {
            return Err(CryptoError::InvalidLength);
        }
        xor(in_out);
        Ok(())
    }

    fn decrypt_in_place(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        in_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.encrypt_in_place(iv, in_out)
    }
}

/// The fuzzing integrity key: the ICV is constant.
pub struct FuzzMac {
    icv_len: usize,
}

impl MacKey for FuzzMac {
    fn icv_len(&self) -> usize {
        self.icv_len
    }

    fn sign(&self, _parts: &[&[u8]], icv: &mut [u8]) -> Result<(), CryptoError> {
        if icv.len() != self.icv_len {
            return Err(CryptoError::InvalidLength);
        }
        icv.fill(ICV_BYTE);
        Ok(())
    }

    fn verify(&self, _parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        if icv.len() == self.icv_len && icv.iter().all(|&b| b == ICV_BYTE) {
            Ok(())
        } else {
            Err(CryptoError::AuthenticationFailed)
        }
    }
}

struct FuzzKex {
    group: KeId,
    public: Vec<u8>,
}

impl KeyExchange for FuzzKex {
    fn group(&self) -> KeId {
        self.group
    }

    fn public_value(&self) -> &[u8] {
        &self.public
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        if peer.len() != self.public.len() {
            return Err(CryptoError::InvalidPeerValue);
        }
        let mut shared: Vec<u8> = self.public.iter().zip(peer).map(|(a, b)| a ^ b).collect();
        if self.group == KeId::ECP_256 {
            // g^ir of an ECP group is the x coordinate only (RFC 5903 §9).
            shared.truncate(32);
        }
        Ok(SecretBytes::new(shared))
    }
}

impl CryptoProvider for FuzzCrypto {
    type Aead = FuzzAead;
    type Cbc = FuzzCbc;
    type Mac = FuzzMac;

    fn aead(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<FuzzAead, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidLength);
        }
        Ok(FuzzAead)
    }

    fn cbc(&self, key: &[u8]) -> Result<FuzzCbc, CryptoError> {
        match key.len() {
            16 | 24 | 32 => Ok(FuzzCbc),
            _ => Err(CryptoError::InvalidLength),
        }
    }

    fn mac(&self, alg: IntegId, key: &[u8]) -> Result<FuzzMac, CryptoError> {
        let (key_len, icv_len) = alg.key_and_icv_len().ok_or(CryptoError::Unsupported)?;
        if key.len() != key_len {
            return Err(CryptoError::InvalidLength);
        }
        Ok(FuzzMac { icv_len })
    }

    fn prf(
        &self,
        alg: PrfId,
        key: &[u8],
        data: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        RustCrypto::new().prf(alg, key, data, out)
    }

    fn key_exchange(&self, group: KeId) -> Result<Box<dyn KeyExchange>, CryptoError> {
        let len = public_value_len(group).ok_or(CryptoError::Unsupported)?;
        let mut public = vec![0u8; len];
        self.fill_random(&mut public)?;
        Ok(Box::new(FuzzKex { group, public }))
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        for chunk in out.chunks_mut(8) {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            chunk.copy_from_slice(&splitmix(n).to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

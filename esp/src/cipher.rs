//! The per-SA cipher: keys bound once at install, sealing and opening one ESP packet in
//! place.
//!
//! * AES-GCM-16 (RFC 4106) and ChaCha20-Poly1305 (RFC 7634): nonce = salt ‖ IV (RFC 4106 §4,
//!   RFC 7634 §2). The 8-octet IV is the 64-bit sequence number, which is unique per SA:
//!   RFC 4106 §3.1 allows a counter, RFC 7634 §2 suggests it and RFC 8750 relies on it. The
//!   AAD is SPI ‖ sequence number, or SPI ‖ high 32 bits ‖ low 32 bits with extended
//!   sequence numbers (RFC 4106 §5, RFC 7634 §2.1).
//! * AES-CBC (RFC 3602) with HMAC-SHA2 (RFC 4868): the ICV covers SPI ‖ sequence ‖ IV ‖
//!   ciphertext, with the high 32 bits of an extended sequence number appended for the ICV
//!   computation only (RFC 4303 §3.3.2.1 and Appendix A). RFC 3602 §2 needs an unpredictable
//!   IV; we derive it without randomness or allocation as the AES encryption, under the SA's
//!   own key, of the unique block `seq (64 bits) ‖ 0^64`. This is the construction NIST
//!   SP 800-38A Appendix C recommends ("apply the forward cipher function, under the same
//!   key, to a nonce"): nobody without the key can predict the IV of a future packet.
//!
//! The buffer handed to [`Cipher::seal`] and [`Cipher::open`] is one ESP packet:
//! `SPI (4) ‖ seq (4) ‖ IV ‖ payload ‖ padding ‖ pad length ‖ next header ‖ ICV`.

use ipsec_core::crypto::{
    AEAD_NONCE_LEN, AEAD_SALT_LEN, AEAD_TAG_LEN, AES_BLOCK_LEN, AeadKey, CbcKey, MacKey,
};
use ipsec_core::{CryptoError, CryptoProvider, EspTransform};

use crate::error::InstallError;

/// Length of the SPI and sequence number fields (RFC 4303 §2).
pub(crate) const ESP_HDR_LEN: usize = 8;
/// Largest ICV any transform here produces (HMAC-SHA2-512-256).
const MAX_ICV_LEN: usize = 32;
/// Length of the IV of the AEAD transforms: the 64-bit sequence number (RFC 4106 §3.1).
const AEAD_IV_LEN: usize = 8;

/// An SA's keys, bound once by the provider.
pub(crate) enum Cipher<P: CryptoProvider> {
    /// AES-GCM-16 or ChaCha20-Poly1305.
    Aead {
        key: P::Aead,
        salt: [u8; AEAD_SALT_LEN],
    },
    /// AES-CBC with an HMAC-SHA2 integrity transform.
    CbcHmac {
        cbc: P::Cbc,
        mac: P::Mac,
        icv_len: usize,
    },
}

impl<P: CryptoProvider> Cipher<P> {
    /// Binds the keys of `t` with `provider`.
    pub(crate) fn new(provider: &P, t: &EspTransform) -> Result<Self, InstallError> {
        match t {
            EspTransform::Aead { alg, key, salt } => {
                let salt: [u8; AEAD_SALT_LEN] = salt
                    .expose()
                    .try_into()
                    .map_err(|_| InstallError::BadSalt)?;
                Ok(Self::Aead {
                    key: provider.aead(*alg, key.expose())?,
                    salt,
                })
            }
            EspTransform::CbcHmac {
                enc_key,
                integ,
                integ_key,
            } => {
                let mac = provider.mac(*integ, integ_key.expose())?;
                let icv_len = mac.icv_len();
                if icv_len > MAX_ICV_LEN {
                    return Err(InstallError::Crypto(CryptoError::Unsupported));
                }
                Ok(Self::CbcHmac {
                    cbc: provider.cbc(enc_key.expose())?,
                    mac,
                    icv_len,
                })
            }
        }
    }

    /// Length of the IV carried in each packet.
    #[inline]
    pub(crate) fn iv_len(&self) -> usize {
        match self {
            Self::Aead { .. } => AEAD_IV_LEN,
            Self::CbcHmac { .. } => AES_BLOCK_LEN,
        }
    }

    /// Length of the ICV.
    #[inline]
    pub(crate) fn icv_len(&self) -> usize {
        match self {
            Self::Aead { .. } => AEAD_TAG_LEN,
            Self::CbcHmac { icv_len, .. } => *icv_len,
        }
    }

    /// Alignment of payload ‖ padding ‖ pad length ‖ next header: 4 octets (RFC 4303 §2.4)
    /// or the cipher block.
    #[inline]
    pub(crate) fn align(&self) -> usize {
        match self {
            Self::Aead { .. } => 4,
            Self::CbcHmac { .. } => AES_BLOCK_LEN,
        }
    }

    /// Smallest valid ciphertext (between IV and ICV).
    #[inline]
    pub(crate) fn min_ct_len(&self) -> usize {
        match self {
            Self::Aead { .. } => 2,
            Self::CbcHmac { .. } => AES_BLOCK_LEN,
        }
    }

    /// Seals `esp` in place. The SPI and low sequence number must already be written; the
    /// IV is derived from `seq` unless `iv` is given (test hook, must have the IV length).
    #[inline]
    pub(crate) fn seal(
        &self,
        esp: &mut [u8],
        seq: u64,
        esn: bool,
        iv: Option<&[u8]>,
    ) -> Result<(), CryptoError> {
        match self {
            Self::Aead { key, salt } => {
                if esp.len() < ESP_HDR_LEN + AEAD_IV_LEN + AEAD_TAG_LEN
                    || iv.is_some_and(|v| v.len() != AEAD_IV_LEN)
                {
                    return Err(CryptoError::InvalidLength);
                }
                let (head, rest) = esp.split_at_mut(ESP_HDR_LEN + AEAD_IV_LEN);
                match iv {
                    Some(v) => head[ESP_HDR_LEN..].copy_from_slice(v),
                    None => head[ESP_HDR_LEN..].copy_from_slice(&seq.to_be_bytes()),
                }
                let nonce = nonce(salt, &head[ESP_HDR_LEN..]);
                let (aad, aad_len) = aead_aad(&head[..ESP_HDR_LEN], seq, esn);
                let (ct, icv) = rest
                    .split_last_chunk_mut::<AEAD_TAG_LEN>()
                    .ok_or(CryptoError::InvalidLength)?;
                key.seal_in_place(&nonce, &aad[..aad_len], ct, icv)
            }
            Self::CbcHmac {
                cbc, mac, icv_len, ..
            } => {
                let icv_len = *icv_len;
                if esp.len() < ESP_HDR_LEN + AES_BLOCK_LEN + icv_len
                    || iv.is_some_and(|v| v.len() != AES_BLOCK_LEN)
                {
                    return Err(CryptoError::InvalidLength);
                }
                let icv_at = esp.len() - icv_len;
                let mut ivb = [0u8; AES_BLOCK_LEN];
                match iv {
                    Some(v) => ivb.copy_from_slice(v),
                    None => {
                        ivb[..8].copy_from_slice(&seq.to_be_bytes());
                        cbc.encrypt_in_place(&[0u8; AES_BLOCK_LEN], &mut ivb)?;
                    }
                }
                let ct_at = ESP_HDR_LEN + AES_BLOCK_LEN;
                esp[ESP_HDR_LEN..ct_at].copy_from_slice(&ivb);
                cbc.encrypt_in_place(&ivb, &mut esp[ct_at..icv_at])?;
                let hi = ((seq >> 32) as u32).to_be_bytes();
                let mut icv = [0u8; MAX_ICV_LEN];
                let (signed, _) = esp.split_at(icv_at);
                if esn {
                    mac.sign(&[signed, &hi], &mut icv[..icv_len])?;
                } else {
                    mac.sign(&[signed], &mut icv[..icv_len])?;
                }
                esp[icv_at..].copy_from_slice(&icv[..icv_len]);
                Ok(())
            }
        }
    }

    /// Verifies the ICV of `esp` and decrypts its payload in place. `seq` is the full
    /// (ESN-inferred) sequence number. The caller checked `esp.len()` against
    /// `ESP_HDR_LEN + iv_len + min_ct_len + icv_len`.
    #[inline]
    pub(crate) fn open(&self, esp: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        match self {
            Self::Aead { key, salt } => {
                // Header, IV, pad length and next header, ICV.
                if esp.len() < ESP_HDR_LEN + AEAD_IV_LEN + 2 + AEAD_TAG_LEN {
                    return Err(CryptoError::InvalidLength);
                }
                let (head, rest) = esp.split_at_mut(ESP_HDR_LEN + AEAD_IV_LEN);
                let nonce = nonce(salt, &head[ESP_HDR_LEN..]);
                let (aad, aad_len) = aead_aad(&head[..ESP_HDR_LEN], seq, esn);
                let (ct, icv) = rest
                    .split_last_chunk_mut::<AEAD_TAG_LEN>()
                    .ok_or(CryptoError::InvalidLength)?;
                key.open_in_place(&nonce, &aad[..aad_len], ct, icv)
            }
            Self::CbcHmac {
                cbc, mac, icv_len, ..
            } => {
                let icv_len = *icv_len;
                if esp.len() < ESP_HDR_LEN + AES_BLOCK_LEN + AES_BLOCK_LEN + icv_len {
                    return Err(CryptoError::InvalidLength);
                }
                let icv_at = esp.len() - icv_len;
                let ct_at = ESP_HDR_LEN + AES_BLOCK_LEN;
                if !(icv_at - ct_at).is_multiple_of(AES_BLOCK_LEN) {
                    return Err(CryptoError::InvalidLength);
                }
                let hi = ((seq >> 32) as u32).to_be_bytes();
                let (signed, icv) = esp.split_at(icv_at);
                if esn {
                    mac.verify(&[signed, &hi], icv)?;
                } else {
                    mac.verify(&[signed], icv)?;
                }
                let mut ivb = [0u8; AES_BLOCK_LEN];
                ivb.copy_from_slice(&esp[ESP_HDR_LEN..ct_at]);
                cbc.decrypt_in_place(&ivb, &mut esp[ct_at..icv_at])
            }
        }
    }
}

#[inline]
fn nonce(salt: &[u8; AEAD_SALT_LEN], iv: &[u8]) -> [u8; AEAD_NONCE_LEN] {
    let mut n = [0u8; AEAD_NONCE_LEN];
    n[..AEAD_SALT_LEN].copy_from_slice(salt);
    n[AEAD_SALT_LEN..].copy_from_slice(iv);
    n
}

/// AAD of RFC 4106 §5 / RFC 7634 §2.1 from the wire header `SPI ‖ seq_lo`.
#[inline]
fn aead_aad(hdr: &[u8], seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut aad = [0u8; 12];
    aad[..4].copy_from_slice(&hdr[..4]);
    if esn {
        aad[4..8].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
        aad[8..12].copy_from_slice(&hdr[4..8]);
        (aad, 12)
    } else {
        aad[4..8].copy_from_slice(&hdr[4..8]);
        (aad, 8)
    }
}

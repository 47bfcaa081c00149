//! The IKEv2 key schedule (RFC 7296 §2.13–§2.18), written once over the provider's PRF
//! ([`CryptoProvider::prf`]).
//!
//! * [`prf_plus`] — prf+ (§2.13): `T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`;
//!   at most 255 blocks.
//! * [`skeyseed`] — `SKEYSEED = prf(Ni | Nr, g^ir)` (§2.14). The nonces are the PRF key.
//!   §2.14 adds that a PRF with a fixed key size (e.g. AES-XCBC-PRF-128) takes half of its
//!   key from each nonce; every PRF negotiated here is an HMAC, which accepts any key
//!   length, so that rule never applies.
//! * [`IkeSaKeys::derive`] — `{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
//!   prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)` (§2.14), with the lengths of the negotiated
//!   transforms: SK_d, SK_pi and SK_pr take the PRF's preferred key length (its output
//!   length for HMAC-SHA2, RFC 4868 §2.1.2); with an AEAD cipher SK_ai/SK_ar are empty and
//!   SK_ei/SK_er are the key followed by the 4-octet salt (RFC 5282 §7.1, RFC 7634 §2);
//!   with AES-CBC SK_e is the key (Key Length / 8) and SK_a the RFC 4868 §2.1.1 integrity
//!   key.
//! * [`IkeSaKeys::derive_rekey`] — rekeying an IKE SA (§2.18):
//!   `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` with the **old** SA's PRF, then the
//!   same prf+ with the new SA's PRF and the **new** SPIs.
//! * [`ChildSaKeys::derive`] — Child SA KEYMAT (§2.17):
//!   `KEYMAT = prf+(SK_d, Ni | Nr)`, or `prf+(SK_d, g^ir (new) | Ni | Nr)` with PFS. Keys
//!   for initiator → responder come first (encryption then integrity), then responder →
//!   initiator; each becomes an [`EspTransform`].
//!
//! "Initiator" and "responder" here are the roles in the exchange that creates the SA
//! (§2.17, §2.18): for a CREATE_CHILD_SA started by the original responder, that peer is
//! the initiator of the derivation.
//!
//! Every key lives in [`SecretBytes`] (zeroized on drop, `Debug` prints `[redacted]`);
//! intermediate buffers are zeroized too. Nothing here logs.

use ipsec_core::crypto::{CryptoError, CryptoProvider};
use ipsec_core::transform::PrfId;
use ipsec_core::{EspTransform, IkeSpi, SecretBytes};
use zeroize::Zeroizing;

use crate::proposal::{Encr, NegotiatedSuite};

/// The largest PRF output this module handles (HMAC-SHA2-512).
const MAX_PRF_LEN: usize = 64;
/// prf+ stops at 255 blocks: the counter is one octet (§2.13).
pub const PRF_PLUS_MAX_BLOCKS: usize = 255;

/// A key-schedule failure. All of them are local errors (wrong configuration or a bug),
/// never caused by the peer's input alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PRF is not one the key schedule supports (only HMAC-SHA2 PRFs are).
    #[error("unsupported PRF {0}")]
    UnsupportedPrf(PrfId),
    /// More keying material requested than prf+ can produce (255 blocks, §2.13).
    #[error("prf+ output of {requested} octets exceeds {max}")]
    TooLong {
        /// Octets requested.
        requested: usize,
        /// The most this PRF can produce.
        max: usize,
    },
    /// The negotiated suite lacks something the derivation needs (e.g. an IKE suite
    /// without PRF, or a non-AEAD cipher without integrity).
    #[error("negotiated suite is incomplete for this derivation")]
    IncompleteSuite,
    /// The provider failed.
    #[error("crypto provider: {0}")]
    Crypto(#[from] CryptoError),
}

fn prf_len(prf: PrfId) -> Result<usize, KeyError> {
    match prf.output_len() {
        Some(n) if n <= MAX_PRF_LEN => Ok(n),
        _ => Err(KeyError::UnsupportedPrf(prf)),
    }
}

/// `prf(key, data[0] | data[1] | …)` as a secret of the PRF's output length.
pub fn prf<P: CryptoProvider>(
    provider: &P,
    prf: PrfId,
    key: &[u8],
    data: &[&[u8]],
) -> Result<SecretBytes, KeyError> {
    let mut out = SecretBytes::zeroed(prf_len(prf)?);
    provider.prf(prf, key, data, out.expose_mut())?;
    Ok(out)
}

/// prf+ (RFC 7296 §2.13): `len` octets of `T1 | T2 | …` where `T1 = prf(K, S | 0x01)` and
/// `Tn = prf(K, Tn-1 | S | n)`; `seed` is S given in parts (concatenated).
///
/// Fails with [`KeyError::TooLong`] past 255 blocks.
pub fn prf_plus<P: CryptoProvider>(
    provider: &P,
    prf: PrfId,
    key: &[u8],
    seed: &[&[u8]],
    len: usize,
) -> Result<SecretBytes, KeyError> {
    let block = prf_len(prf)?;
    let max = block * PRF_PLUS_MAX_BLOCKS;
    if len > max {
        return Err(KeyError::TooLong {
            requested: len,
            max,
        });
    }
    let mut out = SecretBytes::zeroed(len);
    let mut t = Zeroizing::new([0u8; MAX_PRF_LEN]);
    let mut prev = Zeroizing::new([0u8; MAX_PRF_LEN]);
    let mut prev_len = 0;
    for (n, chunk) in (1..=PRF_PLUS_MAX_BLOCKS as u8).zip(out.expose_mut().chunks_mut(block)) {
        let counter = [n];
        let mut parts: Vec<&[u8]> = Vec::with_capacity(seed.len() + 2);
        parts.push(&prev[..prev_len]);
        parts.extend_from_slice(seed);
        parts.push(&counter);
        provider.prf(prf, key, &parts, &mut t[..block])?;
        drop(parts);
        chunk.copy_from_slice(&t[..chunk.len()]);
        prev[..block].copy_from_slice(&t[..block]);
        prev_len = block;
    }
    Ok(out)
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (RFC 7296 §2.14), for the IKE SA set up by IKE_SA_INIT.
///
/// `ni` and `nr` are the nonce payload bodies; `g_ir` is the shared secret from
/// [`ipsec_core::crypto::KeyExchange::complete`] (MODP values left-padded to the prime's
/// length, which the provider does).
pub fn skeyseed<P: CryptoProvider>(
    provider: &P,
    prf_id: PrfId,
    ni: &[u8],
    nr: &[u8],
    g_ir: &SecretBytes,
) -> Result<SecretBytes, KeyError> {
    let key = Zeroizing::new([ni, nr].concat());
    prf(provider, prf_id, &key, &[g_ir.expose()])
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` (RFC 7296 §2.18), computed with the
/// PRF of the **old** IKE SA (the rekeying exchange belongs to it).
pub fn skeyseed_rekey<P: CryptoProvider>(
    provider: &P,
    old_prf: PrfId,
    old_sk_d: &SecretBytes,
    g_ir: &SecretBytes,
    ni: &[u8],
    nr: &[u8],
) -> Result<SecretBytes, KeyError> {
    prf(
        provider,
        old_prf,
        old_sk_d.expose(),
        &[g_ir.expose(), ni, nr],
    )
}

/// The keys of an IKE SA (RFC 7296 §2.14). `Debug` shows `[redacted]` for every key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaKeys {
    /// The negotiated algorithms these keys are for.
    pub suite: NegotiatedSuite,
    /// SK_d: derives Child SA keys and the next SKEYSEED.
    pub sk_d: SecretBytes,
    /// SK_ai: integrity key for messages from the initiator (empty with AEAD).
    pub sk_ai: SecretBytes,
    /// SK_ar: integrity key for messages from the responder (empty with AEAD).
    pub sk_ar: SecretBytes,
    /// SK_ei: encryption key (‖ 4-octet salt with AEAD) for messages from the initiator.
    pub sk_ei: SecretBytes,
    /// SK_er: encryption key (‖ 4-octet salt with AEAD) for messages from the responder.
    pub sk_er: SecretBytes,
    /// SK_pi: MACs the initiator's identity in its AUTH payload (§2.15).
    pub sk_pi: SecretBytes,
    /// SK_pr: MACs the responder's identity in its AUTH payload (§2.15).
    pub sk_pr: SecretBytes,
}

impl IkeSaKeys {
    /// Derives the keys of a new IKE SA from IKE_SA_INIT (RFC 7296 §2.14):
    /// SKEYSEED from the nonces and g^ir, then prf+ over `Ni | Nr | SPIi | SPIr`.
    pub fn derive<P: CryptoProvider>(
        provider: &P,
        suite: &NegotiatedSuite,
        g_ir: &SecretBytes,
        ni: &[u8],
        nr: &[u8],
        spi_i: IkeSpi,
        spi_r: IkeSpi,
    ) -> Result<Self, KeyError> {
        let prf_id = suite.prf.ok_or(KeyError::IncompleteSuite)?;
        let seed = skeyseed(provider, prf_id, ni, nr, g_ir)?;
        Self::from_skeyseed(provider, suite, &seed, ni, nr, spi_i, spi_r)
    }

    /// Derives the keys of the new IKE SA when rekeying (RFC 7296 §2.18): SKEYSEED from the
    /// old SA's SK_d with the old SA's PRF, then prf+ with the new suite's PRF over the
    /// new nonces and the **new** SPIs.
    #[allow(clippy::too_many_arguments)]
    pub fn derive_rekey<P: CryptoProvider>(
        provider: &P,
        old: &IkeSaKeys,
        new_suite: &NegotiatedSuite,
        g_ir: &SecretBytes,
        ni: &[u8],
        nr: &[u8],
        new_spi_i: IkeSpi,
        new_spi_r: IkeSpi,
    ) -> Result<Self, KeyError> {
        let old_prf = old.suite.prf.ok_or(KeyError::IncompleteSuite)?;
        let seed = skeyseed_rekey(provider, old_prf, &old.sk_d, g_ir, ni, nr)?;
        Self::from_skeyseed(provider, new_suite, &seed, ni, nr, new_spi_i, new_spi_r)
    }

    /// Splits `prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)` into the seven keys (§2.14).
    pub fn from_skeyseed<P: CryptoProvider>(
        provider: &P,
        suite: &NegotiatedSuite,
        skeyseed: &SecretBytes,
        ni: &[u8],
        nr: &[u8],
        spi_i: IkeSpi,
        spi_r: IkeSpi,
    ) -> Result<Self, KeyError> {
        let prf_id = suite.prf.ok_or(KeyError::IncompleteSuite)?;
        let p_len = prf_len(prf_id)?;
        let a_len = match suite.encr {
            Encr::Aead(_) => 0,
            Encr::AesCbc { .. } => match suite.integ.and_then(|i| i.key_and_icv_len()) {
                Some((k, _)) => k,
                None => return Err(KeyError::IncompleteSuite),
            },
        };
        let e_len = suite.encr.keymat_len();
        let total = 3 * p_len + 2 * a_len + 2 * e_len;
        let mut km = prf_plus(
            provider,
            prf_id,
            skeyseed.expose(),
            &[ni, nr, &spi_i.0, &spi_r.0],
            total,
        )?;
        Ok(Self {
            suite: *suite,
            sk_d: km.split_to(p_len),
            sk_ai: km.split_to(a_len),
            sk_ar: km.split_to(a_len),
            sk_ei: km.split_to(e_len),
            sk_er: km.split_to(e_len),
            sk_pi: km.split_to(p_len),
            sk_pr: km.split_to(p_len),
        })
    }

    /// The PRF of this IKE SA.
    pub fn prf(&self) -> PrfId {
        self.suite
            .prf
            .expect("IkeSaKeys are only built from suites with a PRF")
    }

    /// `(key, salt)` of SK_ei (`initiator`) or SK_er; the salt is empty for AES-CBC.
    pub fn sk_e_parts(&self, initiator: bool) -> (&[u8], &[u8]) {
        let sk = if initiator { &self.sk_ei } else { &self.sk_er };
        sk.expose().split_at(self.suite.encr.key_len())
    }
}

/// The keys of a Child SA (RFC 7296 §2.17), one ESP transform per direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaKeys {
    /// Protects traffic from the exchange initiator to the responder: the initiator's
    /// outbound SA and the responder's inbound SA.
    pub initiator_to_responder: EspTransform,
    /// Protects traffic from the exchange responder to the initiator.
    pub responder_to_initiator: EspTransform,
}

impl ChildSaKeys {
    /// `KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)` (RFC 7296 §2.17), split initiator →
    /// responder first (encryption key then integrity key), then responder → initiator.
    ///
    /// `ike` are the keys of the IKE SA the exchange runs on (its PRF and SK_d); `child` is
    /// the negotiated ESP suite; `g_ir` is the PFS shared secret of a CREATE_CHILD_SA with
    /// a KE payload, `None` otherwise (and always for the Child SA of IKE_AUTH).
    pub fn derive<P: CryptoProvider>(
        provider: &P,
        ike: &IkeSaKeys,
        child: &NegotiatedSuite,
        g_ir: Option<&SecretBytes>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<Self, KeyError> {
        Self::derive_with(provider, ike.prf(), &ike.sk_d, child, g_ir, ni, nr)
    }

    /// [`ChildSaKeys::derive`] with an explicit PRF and SK_d.
    pub fn derive_with<P: CryptoProvider>(
        provider: &P,
        prf_id: PrfId,
        sk_d: &SecretBytes,
        child: &NegotiatedSuite,
        g_ir: Option<&SecretBytes>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<Self, KeyError> {
        let e_len = child.encr.keymat_len();
        let a_len = match child.encr {
            Encr::Aead(_) => 0,
            Encr::AesCbc { .. } => match child.integ.and_then(|i| i.key_and_icv_len()) {
                Some((k, _)) => k,
                None => return Err(KeyError::IncompleteSuite),
            },
        };
        let dir_len = e_len + a_len;
        let mut seed: Vec<&[u8]> = Vec::with_capacity(3);
        if let Some(g) = g_ir {
            seed.push(g.expose());
        }
        seed.push(ni);
        seed.push(nr);
        let km = prf_plus(provider, prf_id, sk_d.expose(), &seed, 2 * dir_len)?;
        let (i2r, r2i) = km.expose().split_at(dir_len);
        Ok(Self {
            initiator_to_responder: esp_transform(child, i2r)?,
            responder_to_initiator: esp_transform(child, r2i)?,
        })
    }

    /// Our outbound transform, given whether we initiated the exchange.
    pub fn outbound(&self, we_initiated: bool) -> &EspTransform {
        if we_initiated {
            &self.initiator_to_responder
        } else {
            &self.responder_to_initiator
        }
    }

    /// Our inbound transform, given whether we initiated the exchange.
    pub fn inbound(&self, we_initiated: bool) -> &EspTransform {
        self.outbound(!we_initiated)
    }
}

/// One direction's slice of KEYMAT (encryption key, then integrity key) as an ESP transform.
fn esp_transform(suite: &NegotiatedSuite, km: &[u8]) -> Result<EspTransform, KeyError> {
    match suite.encr {
        Encr::Aead(alg) => EspTransform::aead_from_keymat(alg, km).ok_or(KeyError::IncompleteSuite),
        Encr::AesCbc { .. } => {
            let integ = suite.integ.ok_or(KeyError::IncompleteSuite)?;
            let (enc, auth) = km.split_at(suite.encr.key_len());
            Ok(EspTransform::CbcHmac {
                enc_key: SecretBytes::from_slice(enc),
                integ,
                integ_key: SecretBytes::from_slice(auth),
            })
        }
    }
}

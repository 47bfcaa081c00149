//! Pre-shared key authentication (RFC 7296 §2.15, AUTH payload §3.8, Auth Method 2).
//!
//! ```text
//! InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//! MACedIDForI           = prf(SK_pi, RestOfInitIDPayload)
//! ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//! MACedIDForR           = prf(SK_pr, RestOfRespIDPayload)
//! AUTH                  = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//! ```
//!
//! * RealMessage1/2 are the IKE_SA_INIT request/response exactly as sent on the wire (from
//!   the IKE header on, without a UDP-4500 non-ESP marker).
//! * NonceRData/NonceIData are the *other* side's nonce payload body.
//! * RestOf…IDPayload is the ID payload body after the generic payload header: ID Type,
//!   three RESERVED octets, then the identification data (§3.5).
//!
//! [`signed_octets`] builds the octets (also what a signature method signs), [`psk_auth`]
//! computes AUTH and [`verify_psk_auth`] checks a received AUTH in constant time
//! (`subtle`). [`Psk`] enforces a minimum length: RFC 7296 §2.15 asks for a PSK "as strong
//! as a key" and warns that PSKs derived from passwords are open to an offline dictionary
//! attack by anyone who sees one exchange (§5). strongSwan only logs a warning for short
//! secrets; we refuse keys below [`DEFAULT_MIN_PSK_LEN`] octets by default, and
//! [`Psk::with_min_len`] lets a deployment lower the bar deliberately.

use ipsec_core::SecretBytes;
use ipsec_core::crypto::CryptoProvider;
use ipsec_core::transform::PrfId;
use subtle::ConstantTimeEq;

use crate::keys::{IkeSaKeys, KeyError, prf};

/// The key pad of the PSK AUTH computation (RFC 7296 §2.15), 17 ASCII octets, no NUL.
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The default minimum PSK length in octets (160 bits, an HMAC-SHA1-era key size; see the
/// module docs).
pub const DEFAULT_MIN_PSK_LEN: usize = 20;

/// An authentication failure or configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The PSK is shorter than the configured minimum.
    #[error("pre-shared key of {len} octets is shorter than the minimum of {min}")]
    PskTooShort {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The AUTH payload did not verify.
    #[error("AUTH payload does not verify")]
    Mismatch,
    /// The key schedule failed (unsupported PRF, provider error).
    #[error("{0}")]
    Key(#[from] KeyError),
}

/// A pre-shared key, checked for a minimum length. `Debug` prints `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Psk(SecretBytes);

impl Psk {
    /// A PSK of at least [`DEFAULT_MIN_PSK_LEN`] octets.
    pub fn new(secret: SecretBytes) -> Result<Self, AuthError> {
        Self::with_min_len(secret, DEFAULT_MIN_PSK_LEN)
    }

    /// A PSK of at least `min` octets.
    pub fn with_min_len(secret: SecretBytes, min: usize) -> Result<Self, AuthError> {
        if secret.len() < min || secret.is_empty() {
            return Err(AuthError::PskTooShort {
                len: secret.len(),
                min,
            });
        }
        Ok(Self(secret))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

/// Whose AUTH payload is computed or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The original initiator of the IKE SA (uses SK_pi, RealMessage1 and Nr).
    Initiator,
    /// The original responder (uses SK_pr, RealMessage2 and Ni).
    Responder,
}

/// The octets of one side's AUTH (RFC 7296 §2.15):
/// `RealMessage | Nonce(other side)Data | prf(SK_p, RestOfIDPayload)`.
///
/// * `real_message`: our IKE_SA_INIT message as sent, when `signer` is us (request for the
///   initiator, response for the responder);
/// * `peer_nonce`: the other side's nonce data (Nr for the initiator's AUTH, Ni for the
///   responder's);
/// * `sk_p`: SK_pi for the initiator's AUTH, SK_pr for the responder's;
/// * `id_body`: the ID payload of the signer without the generic header.
pub fn signed_octets<P: CryptoProvider>(
    provider: &P,
    prf_id: PrfId,
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &SecretBytes,
    id_body: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let maced_id = prf(provider, prf_id, sk_p.expose(), &[id_body])?;
    let mut out = Vec::with_capacity(real_message.len() + peer_nonce.len() + maced_id.len());
    out.extend_from_slice(real_message);
    out.extend_from_slice(peer_nonce);
    out.extend_from_slice(maced_id.expose());
    Ok(out)
}

/// The inputs of one side's AUTH, taken from the IKE SA: which SK_p to use by role.
#[derive(Debug, Clone, Copy)]
pub struct AuthInput<'a> {
    /// Whose AUTH payload this is.
    pub signer: Signer,
    /// The signer's IKE_SA_INIT message as sent (RealMessage1 or RealMessage2).
    pub real_message: &'a [u8],
    /// The other side's nonce data (Nr for the initiator's AUTH, Ni for the responder's).
    pub peer_nonce: &'a [u8],
    /// The signer's ID payload body (ID Type, 3 RESERVED octets, data).
    pub id_body: &'a [u8],
}

impl AuthInput<'_> {
    fn octets<P: CryptoProvider>(
        &self,
        provider: &P,
        keys: &IkeSaKeys,
    ) -> Result<Vec<u8>, KeyError> {
        let sk_p = match self.signer {
            Signer::Initiator => &keys.sk_pi,
            Signer::Responder => &keys.sk_pr,
        };
        signed_octets(
            provider,
            keys.prf(),
            self.real_message,
            self.peer_nonce,
            sk_p,
            self.id_body,
        )
    }
}

/// `AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)` (RFC 7296 §2.15),
/// from signed octets built with [`signed_octets`].
pub fn psk_auth_raw<P: CryptoProvider>(
    provider: &P,
    prf_id: PrfId,
    psk: &Psk,
    signed_octets: &[u8],
) -> Result<SecretBytes, KeyError> {
    let padded = prf(provider, prf_id, psk.expose(), &[KEY_PAD])?;
    prf(provider, prf_id, padded.expose(), &[signed_octets])
}

/// Computes the AUTH payload data for `input.signer` with a PSK (Auth Method 2).
pub fn psk_auth<P: CryptoProvider>(
    provider: &P,
    keys: &IkeSaKeys,
    psk: &Psk,
    input: &AuthInput<'_>,
) -> Result<Vec<u8>, AuthError> {
    let octets = input.octets(provider, keys)?;
    let auth = psk_auth_raw(provider, keys.prf(), psk, &octets)?;
    Ok(auth.expose().to_vec())
}

/// Verifies a received PSK AUTH payload in constant time; a wrong length fails the same
/// way as a wrong value.
pub fn verify_psk_auth<P: CryptoProvider>(
    provider: &P,
    keys: &IkeSaKeys,
    psk: &Psk,
    input: &AuthInput<'_>,
    received: &[u8],
) -> Result<(), AuthError> {
    let octets = input.octets(provider, keys)?;
    let expected = psk_auth_raw(provider, keys.prf(), psk, &octets)?;
    if expected.len() == received.len() && bool::from(expected.expose().ct_eq(received)) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

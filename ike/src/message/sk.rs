//! Protection of the Encrypted and Authenticated payload, SK (RFC 7296 §3.14), with
//! AES-GCM-16 (RFC 5282), ChaCha20-Poly1305 (RFC 7634 §3) and AES-CBC with an HMAC-SHA2
//! integrity transform (RFC 7296 §3.14, RFC 4868; AES-CBC + HMAC-SHA2-256-128 is the
//! RFC 8247 MUST).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Initialization Vector                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Encrypted IKE Payloads                     ~
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               |             Padding (0-255 octets)            |
//! +-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//! |                                               |  Pad Length   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Integrity Checksum Data                    ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! * AEAD (RFC 5282 §3–§5, RFC 7634 §3): an 8-octet IV; nonce = 4-octet salt (the last
//!   four octets of SK_e) ‖ IV; AAD = the octets from the start of the IKE header up to the
//!   IV (IKE header + SK header, plus Fragment Number/Total Fragments for SKF,
//!   RFC 7383 §2.5.3); the 16-octet tag is the ICV; no padding is added.
//! * AES-CBC: a 16-octet IV; the plaintext is padded with zero octets to a block multiple;
//!   the ICV is the truncated HMAC over the whole message from the IKE header through the
//!   Pad Length.
//!
//! The integrity of the message is verified before any decrypted octet is parsed.
//!
//! IVs come from a per-cipher 64-bit counter, so an [`SkCipher`] must be used for one
//! direction of one IKE SA (its keys are SK_ei/SK_ai or SK_er/SK_ar). For AEAD the IV is the
//! counter itself, unique per key as RFC 5282 §3.1 requires. For AES-CBC the IV must be
//! unpredictable (§3.14): it is the AES encryption, under SK_e, of a block holding a fixed
//! label and the counter — the construction of NIST SP 800-38A Appendix C — so no random
//! source is needed per message.

use core::fmt;

use ipsec_core::crypto::{
    AEAD_SALT_LEN, AEAD_TAG_LEN, AES_BLOCK_LEN, AeadAlgorithm, AeadKey, CbcKey, CryptoError,
    MacKey, aead_nonce,
};
use ipsec_core::transform::{EncrId, IntegId};
use ipsec_core::{CryptoProvider, SecretBytes};

use super::codec::{Reader, put_u8, put_u16};
use super::error::{DecodeError, EncodeError};
use super::header::{IKE_HEADER_LEN, IkeHeader, PayloadType};
use super::payload::Payload;
use super::{Message, decode_chain, encode_chain};

/// The negotiated protection of SK payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkTransform {
    /// AES-GCM-16 or ChaCha20-Poly1305 (integrity transform NONE).
    Aead(AeadAlgorithm),
    /// ENCR_AES_CBC with an HMAC-SHA2 integrity transform.
    AesCbc {
        /// AES key length in bits: 128, 192 or 256.
        key_bits: u16,
        /// The integrity transform.
        integ: IntegId,
    },
}

impl SkTransform {
    /// Maps a negotiated ENCR transform (with its Key Length attribute) and INTEG transform
    /// to a protection, or `None` if this module does not implement the combination.
    pub fn from_negotiated(
        encr: EncrId,
        key_bits: Option<u16>,
        integ: Option<IntegId>,
    ) -> Option<Self> {
        if let Some(a) = AeadAlgorithm::from_transform(encr, key_bits) {
            return matches!(integ, None | Some(IntegId::NONE)).then_some(Self::Aead(a));
        }
        match (encr, key_bits, integ) {
            (EncrId::AES_CBC, Some(bits @ (128 | 192 | 256)), Some(i))
                if i.key_and_icv_len().is_some() =>
            {
                Some(Self::AesCbc {
                    key_bits: bits,
                    integ: i,
                })
            }
            _ => None,
        }
    }

    /// Length of SK_e in octets (for AEAD: cipher key plus the 4-octet salt).
    pub fn encr_key_len(self) -> usize {
        match self {
            Self::Aead(a) => a.keymat_len(),
            Self::AesCbc { key_bits, .. } => usize::from(key_bits / 8),
        }
    }

    /// Length of SK_a in octets (0 for AEAD).
    pub fn integ_key_len(self) -> usize {
        match self {
            Self::Aead(_) => 0,
            Self::AesCbc { integ, .. } => integ.key_and_icv_len().map_or(0, |(k, _)| k),
        }
    }

    /// IV length in octets.
    pub fn iv_len(self) -> usize {
        match self {
            Self::Aead(_) => 8,
            Self::AesCbc { .. } => AES_BLOCK_LEN,
        }
    }

    /// ICV length in octets.
    pub fn icv_len(self) -> usize {
        match self {
            Self::Aead(_) => AEAD_TAG_LEN,
            Self::AesCbc { integ, .. } => integ.key_and_icv_len().map_or(0, |(_, i)| i),
        }
    }

    /// Length of the encrypted part (payloads + padding + Pad Length) for `plain` octets of
    /// inner payloads.
    pub fn ciphertext_len(self, plain: usize) -> usize {
        match self {
            Self::Aead(_) => plain + 1,
            Self::AesCbc { .. } => (plain + 1).div_ceil(AES_BLOCK_LEN) * AES_BLOCK_LEN,
        }
    }

    /// Octets the SK payload body adds around `plain` octets of inner payloads
    /// (IV, padding, Pad Length, ICV), without the 4-octet generic header.
    pub fn overhead(self, plain: usize) -> usize {
        self.iv_len() + self.ciphertext_len(plain) - plain + self.icv_len()
    }
}

/// Why protecting or opening an SK/SKF payload failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkError {
    /// The message around the encrypted payload is malformed.
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// The payloads to protect cannot be encoded.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The message has no SK (or, for fragments, SKF) payload.
    #[error("no encrypted payload")]
    NoEncryptedPayload,
    /// The ICV or AEAD tag did not verify; nothing inside was looked at.
    #[error("integrity check failed")]
    AuthenticationFailed,
    /// The encrypted payload is too short, not block aligned, or its Pad Length is wrong.
    #[error("malformed encrypted payload: {0}")]
    Malformed(&'static str),
    /// The authenticated, decrypted payload chain is malformed (answer INVALID_SYNTAX).
    #[error("decrypted payloads: {0}")]
    Inner(DecodeError),
    /// A key has the wrong length for the transform.
    #[error("{what} is {actual} octets, expected {expected}")]
    KeyLength {
        /// SK_e or SK_a.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
    /// The crypto provider failed.
    #[error("crypto provider: {0}")]
    Crypto(CryptoError),
    /// 2^64 messages were protected with this key.
    #[error("IV space exhausted")]
    IvExhausted,
    /// The maximum message size leaves no room for fragment content.
    #[error("maximum message size {0} is too small for a fragment")]
    MtuTooSmall(usize),
    /// The message needs more than 65535 fragments.
    #[error("message needs {0} fragments")]
    TooManyFragments(usize),
    /// An SK/SKF payload among the payloads to protect.
    #[error("encrypted payload inside an encrypted payload")]
    NestedEncrypted,
}

/// A decrypted, authenticated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedMessage {
    /// The IKE header as received.
    pub header: IkeHeader,
    /// Payloads before the SK payload (not integrity protected; normally none).
    pub clear: Vec<Payload>,
    /// The decrypted inner payloads.
    pub payloads: Vec<Payload>,
}

enum Keys<P: CryptoProvider> {
    Aead { key: P::Aead, salt: [u8; 4] },
    Cbc { key: P::Cbc, mac: P::Mac },
}

/// SK payload protection for one direction of one IKE SA.
pub struct SkCipher<P: CryptoProvider> {
    transform: SkTransform,
    keys: Keys<P>,
    next_iv: u64,
}

impl<P: CryptoProvider> fmt::Debug for SkCipher<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkCipher")
            .field("transform", &self.transform)
            .field("keys", &"[redacted]")
            .field("next_iv", &self.next_iv)
            .finish()
    }
}

/// Label of the IV-derivation block for AES-CBC.
const CBC_IV_LABEL: &[u8; 8] = b"IKEv2-IV";

impl<P: CryptoProvider> SkCipher<P> {
    /// Binds SK_e (and SK_a, empty for AEAD) for `transform`.
    pub fn new(
        provider: &P,
        transform: SkTransform,
        sk_e: &SecretBytes,
        sk_a: &SecretBytes,
    ) -> Result<Self, SkError> {
        let check = |what, expected: usize, actual: usize| {
            if expected == actual {
                Ok(())
            } else {
                Err(SkError::KeyLength {
                    what,
                    expected,
                    actual,
                })
            }
        };
        check("SK_e", transform.encr_key_len(), sk_e.len())?;
        check("SK_a", transform.integ_key_len(), sk_a.len())?;
        let keys = match transform {
            SkTransform::Aead(alg) => {
                let e = sk_e.expose();
                let (k, s) = e.split_at(e.len() - AEAD_SALT_LEN);
                let mut salt = [0u8; 4];
                salt.copy_from_slice(s);
                Keys::Aead {
                    key: provider.aead(alg, k).map_err(SkError::Crypto)?,
                    salt,
                }
            }
            SkTransform::AesCbc { integ, .. } => Keys::Cbc {
                key: provider.cbc(sk_e.expose()).map_err(SkError::Crypto)?,
                mac: provider
                    .mac(integ, sk_a.expose())
                    .map_err(SkError::Crypto)?,
            },
        };
        Ok(Self {
            transform,
            keys,
            next_iv: 0,
        })
    }

    /// Moves the IV counter forward (for known-answer tests and for resuming a cipher).
    /// It never moves backwards: an AEAD IV must not repeat under one key, so a smaller
    /// value is refused.
    pub fn set_iv_counter(&mut self, next: u64) -> Result<(), SkError> {
        if next < self.next_iv {
            return Err(SkError::Malformed("IV counter cannot move backwards"));
        }
        self.next_iv = next;
        Ok(())
    }

    /// The protection in use.
    pub fn transform(&self) -> SkTransform {
        self.transform
    }

    fn next_iv(&mut self) -> Result<[u8; AES_BLOCK_LEN], SkError> {
        let ctr = self.next_iv;
        self.next_iv = ctr.checked_add(1).ok_or(SkError::IvExhausted)?;
        let mut iv = [0u8; AES_BLOCK_LEN];
        match &self.keys {
            Keys::Aead { .. } => iv[..8].copy_from_slice(&ctr.to_be_bytes()),
            Keys::Cbc { key, .. } => {
                iv[..8].copy_from_slice(CBC_IV_LABEL);
                iv[8..].copy_from_slice(&ctr.to_be_bytes());
                // One-block CBC with a zero IV is the plain block cipher.
                key.encrypt_in_place(&[0u8; AES_BLOCK_LEN], &mut iv)
                    .map_err(SkError::Crypto)?;
            }
        }
        Ok(iv)
    }

    /// Appends IV, encrypted `plain` + padding + Pad Length, and ICV to `out`. The octets
    /// `out[msg_start..]` must already hold the IKE header and the SK/SKF header with their
    /// final lengths: they are the AAD (AEAD) or the start of the ICV input (CBC).
    fn encrypt_into(
        &mut self,
        out: &mut Vec<u8>,
        msg_start: usize,
        plain: &[u8],
    ) -> Result<(), SkError> {
        let iv = self.next_iv()?;
        let iv_len = self.transform.iv_len();
        let ct_len = self.transform.ciphertext_len(plain.len());
        let pad = ct_len - plain.len() - 1;
        let aad_end = out.len();
        out.extend_from_slice(&iv[..iv_len]);
        let ct_start = out.len();
        out.extend_from_slice(plain);
        out.resize(out.len() + pad, 0);
        put_u8(out, pad as u8);
        match &self.keys {
            Keys::Aead { key, salt } => {
                let mut iv8 = [0u8; 8];
                iv8.copy_from_slice(&iv[..8]);
                let nonce = aead_nonce(salt, &iv8);
                let mut tag = [0u8; AEAD_TAG_LEN];
                let (head, ct) = out.split_at_mut(ct_start);
                let aad = head.get(msg_start..aad_end).unwrap_or(&[]);
                key.seal_in_place(&nonce, aad, ct, &mut tag)
                    .map_err(SkError::Crypto)?;
                out.extend_from_slice(&tag);
            }
            Keys::Cbc { key, mac } => {
                let ct = out.get_mut(ct_start..).unwrap_or(&mut []);
                key.encrypt_in_place(&iv, ct).map_err(SkError::Crypto)?;
                let mut icv = vec![0u8; mac.icv_len()];
                mac.sign(&[out.get(msg_start..).unwrap_or(&[])], &mut icv)
                    .map_err(SkError::Crypto)?;
                out.extend_from_slice(&icv);
            }
        }
        Ok(())
    }

    /// Verifies and decrypts the encrypted part that starts (with the IV) at
    /// `msg[data_start..]` and runs to the end of the message; returns the inner payload
    /// octets with padding removed.
    fn decrypt(&self, msg: &[u8], data_start: usize) -> Result<Vec<u8>, SkError> {
        let iv_len = self.transform.iv_len();
        let icv_len = self.transform.icv_len();
        let data = msg.get(data_start..).ok_or(SkError::Malformed("offset"))?;
        if data.len() < iv_len + 1 + icv_len {
            return Err(SkError::Malformed("shorter than IV, Pad Length and ICV"));
        }
        let (iv, rest) = data.split_at(iv_len);
        let (ct, icv) = rest.split_at(rest.len() - icv_len);
        let mut buf = ct.to_vec();
        match &self.keys {
            Keys::Aead { key, salt } => {
                let mut iv8 = [0u8; 8];
                iv8.copy_from_slice(iv);
                let mut tag = [0u8; AEAD_TAG_LEN];
                tag.copy_from_slice(icv);
                let aad = msg.get(..data_start).unwrap_or(&[]);
                key.open_in_place(&aead_nonce(salt, &iv8), aad, &mut buf, &tag)
                    .map_err(|_| SkError::AuthenticationFailed)?;
            }
            Keys::Cbc { key, mac } => {
                let signed = msg.get(..msg.len() - icv_len).unwrap_or(&[]);
                mac.verify(&[signed], icv)
                    .map_err(|_| SkError::AuthenticationFailed)?;
                if !buf.len().is_multiple_of(AES_BLOCK_LEN) {
                    return Err(SkError::Malformed(
                        "ciphertext not a multiple of the block size",
                    ));
                }
                let mut iv16 = [0u8; AES_BLOCK_LEN];
                iv16.copy_from_slice(iv);
                key.decrypt_in_place(&iv16, &mut buf)
                    .map_err(SkError::Crypto)?;
            }
        }
        let pad = usize::from(*buf.last().ok_or(SkError::Malformed("empty"))?);
        if pad + 1 > buf.len() {
            return Err(SkError::Malformed("Pad Length exceeds the encrypted data"));
        }
        buf.truncate(buf.len() - pad - 1);
        Ok(buf)
    }

    /// Encodes `header` followed by one SK payload protecting `inner`, appending the whole
    /// datagram to `out`. Next Payload and Length fields are computed; the header's own
    /// `next_payload`/`length` are ignored.
    pub fn seal(
        &mut self,
        header: &IkeHeader,
        inner: &[Payload],
        out: &mut Vec<u8>,
    ) -> Result<(), SkError> {
        if inner.iter().any(Payload::is_encrypted) {
            return Err(SkError::NestedEncrypted);
        }
        let mut plain = Vec::new();
        let first = encode_chain(inner, &mut plain)?;
        self.seal_one(header, PayloadType::SK, first, None, &plain, out)
    }

    /// Like [`SkCipher::seal`], returning a new vector.
    pub fn seal_to_vec(
        &mut self,
        header: &IkeHeader,
        inner: &[Payload],
    ) -> Result<Vec<u8>, SkError> {
        let mut v = Vec::new();
        self.seal(header, inner, &mut v)?;
        Ok(v)
    }

    fn seal_one(
        &mut self,
        header: &IkeHeader,
        ty: PayloadType,
        next: PayloadType,
        fragment: Option<(u16, u16)>,
        plain: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SkError> {
        let t = self.transform;
        let hdr = if fragment.is_some() { 8 } else { 4 };
        let payload_len = hdr + t.iv_len() + t.ciphertext_len(plain.len()) + t.icv_len();
        let payload_len16 = u16::try_from(payload_len).map_err(|_| EncodeError::TooLong {
            what: "encrypted payload",
            len: payload_len,
            max: usize::from(u16::MAX),
        })?;
        let start = out.len();
        header.write(ty, (IKE_HEADER_LEN + payload_len) as u32, out);
        put_u8(out, next.0);
        put_u8(out, 0);
        put_u16(out, payload_len16);
        if let Some((num, total)) = fragment {
            put_u16(out, num);
            put_u16(out, total);
        }
        self.encrypt_into(out, start, plain)
    }

    /// Seals `inner` as one SK datagram, or — when `fragment_above` is `Some(max)` and the
    /// SK message would exceed `max` octets — as SKF fragments of at most `max` octets
    /// (RFC 7383 §2.5). Pass `Some` only if the peer sent IKEV2_FRAGMENTATION_SUPPORTED in
    /// IKE_SA_INIT.
    pub fn seal_datagrams(
        &mut self,
        header: &IkeHeader,
        inner: &[Payload],
        fragment_above: Option<usize>,
    ) -> Result<Vec<Vec<u8>>, SkError> {
        let whole = self.seal_to_vec(header, inner)?;
        match fragment_above {
            Some(max) if whole.len() > max => self.seal_fragments(header, inner, max),
            _ => Ok(vec![whole]),
        }
    }

    /// Verifies and decrypts a whole message whose last payload is SK. The message (with
    /// the non-ESP marker removed) is authenticated before any inner octet is parsed.
    pub fn open(&self, msg: &[u8]) -> Result<OpenedMessage, SkError> {
        let m = Message::decode(msg)?;
        let Some(sk) = m.sk() else {
            return Err(SkError::NoEncryptedPayload);
        };
        let first = sk.first_payload;
        let data_start = msg.len() - sk.data.len();
        let plain = self.decrypt(msg, data_start)?;
        let mut r = Reader::new(&plain, data_start + self.transform.iv_len(), None);
        let payloads = decode_chain(&mut r, first, false).map_err(SkError::Inner)?;
        let mut clear = m.payloads;
        clear.pop();
        Ok(OpenedMessage {
            header: m.header,
            clear,
            payloads,
        })
    }

    /// Splits `inner` into SKF fragments (RFC 7383 §2.5) of at most `max_message_len`
    /// octets each (the IKE message: subtract IP and UDP headers and the non-ESP marker
    /// from the path MTU first). Each fragment is a complete datagram with the same header
    /// fields; fragment 1 carries the first inner payload type.
    pub fn seal_fragments(
        &mut self,
        header: &IkeHeader,
        inner: &[Payload],
        max_message_len: usize,
    ) -> Result<Vec<Vec<u8>>, SkError> {
        if inner.iter().any(Payload::is_encrypted) {
            return Err(SkError::NestedEncrypted);
        }
        let mut plain = Vec::new();
        let first = encode_chain(inner, &mut plain)?;
        let t = self.transform;
        let fixed = IKE_HEADER_LEN + 8 + t.iv_len() + t.icv_len();
        let room = max_message_len.saturating_sub(fixed);
        let chunk = match t {
            SkTransform::Aead(_) => room.saturating_sub(1),
            SkTransform::AesCbc { .. } => (room / AES_BLOCK_LEN * AES_BLOCK_LEN).saturating_sub(1),
        };
        if chunk == 0 {
            return Err(SkError::MtuTooSmall(max_message_len));
        }
        let n = plain.len().div_ceil(chunk).max(1);
        let total = u16::try_from(n).map_err(|_| SkError::TooManyFragments(n))?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let piece = plain
                .get(i * chunk..((i + 1) * chunk).min(plain.len()))
                .unwrap_or(&[]);
            let next = if i == 0 { first } else { PayloadType::NONE };
            let mut dgram = Vec::new();
            self.seal_one(
                header,
                PayloadType::SKF,
                next,
                Some((i as u16 + 1, total)),
                piece,
                &mut dgram,
            )?;
            out.push(dgram);
        }
        Ok(out)
    }

    /// Verifies and decrypts one SKF fragment (RFC 7383 §2.6). Only the result of this
    /// call can be given to a [`FragmentReassembler`](super::FragmentReassembler), so
    /// unauthenticated fragments are never stored.
    pub fn open_fragment(&self, msg: &[u8]) -> Result<super::Fragment, SkError> {
        let m = Message::decode(msg)?;
        let Some(f) = m.skf() else {
            return Err(SkError::NoEncryptedPayload);
        };
        let data_start = msg.len() - f.data.len();
        let plain = self.decrypt(msg, data_start)?;
        Ok(super::Fragment {
            header: m.header,
            number: f.fragment_number,
            total: f.total_fragments,
            first_payload: f.first_payload,
            plain,
        })
    }
}

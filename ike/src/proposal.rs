//! Proposal configuration and negotiation (RFC 7296 §2.7, §3.3).
//!
//! * [`ProposalConfig`] — one proposal we offer or accept, as lists of algorithms per
//!   transform type (§3.3.2), for an IKE SA or an ESP Child SA. It parses from and displays
//!   as the proposal strings strongSwan users know (`aes256gcm16-prfsha256-x25519`,
//!   `aes128-sha256-modp2048`, `aes256gcm16-esn`, ...); see [`parse_proposals`].
//! * [`ProposalConfig::to_proposal`] / [`to_sa_payload`] — the wire [`Proposal`]s an
//!   initiator sends, numbered from 1 (§3.3.1).
//! * [`select`] — the responder's choice (§2.7). **Policy: the responder's own preference
//!   wins.** We walk our proposals in our order, and within each, our transforms in our
//!   order, and accept the first combination the peer offered. This is what strongSwan does
//!   by default; it keeps the strength of what we negotiate under our control rather than
//!   the peer's. One exception avoids a needless round trip: when the peer's KE payload
//!   uses a group that both sides accept in the chosen proposal, that group is taken even if
//!   we list another one first (the §1.2 INVALID_KE_PAYLOAD exchange would otherwise force
//!   the peer to our first choice for no security gain).
//! * [`check_response`] — the initiator's check of the responder's reply (§2.7, §3.3.6):
//!   exactly one proposal, whose number is one we sent, with one transform per type, each
//!   one we offered in that proposal.
//! * [`NoProposalChosen`] — when nothing matches, a report naming the transform types
//!   without overlap and both sides' lists, e.g. `no common KE: we accept [x25519, ecp256],
//!   peer offered [modp1024]`.
//! * [`Chosen::check_ke`] — whether the KE payload matches the chosen group, or which
//!   group to request with INVALID_KE_PAYLOAD (§1.2, §1.3, §3.4).
//! * [`NegotiatedSuite`] — the chosen algorithms as `ipsec_core` values, consumed by the
//!   key schedule ([`crate::keys`]).
//!
//! Absent transform types follow §3.3.3/§3.3.6: an absent INTEG (with an AEAD cipher) or
//! KE (in an ESP proposal) means NONE, and an absent ESN in an ESP proposal is read as
//! "no ESN". A transform type this implementation does not know makes the proposal
//! unacceptable unless its only value is NONE (§3.3.6).

use core::fmt;

use ipsec_core::crypto::AeadAlgorithm;
use ipsec_core::transform::{EncrId, EsnId, IntegId, KeId, PrfId, TransformType};

use crate::message::sa::{Proposal, ProtocolId, SaPayload, Transform};

// ------------------------------------------------------------------------------ algorithms

/// An encryption transform (ENCR, type 1) with its key length, as negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encr {
    /// A combined-mode cipher (RFC 4106, RFC 5282, RFC 7634): no separate integrity.
    Aead(AeadAlgorithm),
    /// AES-CBC (RFC 3602) with a 128, 192 or 256-bit key; needs an INTEG transform.
    AesCbc {
        /// Key Length attribute in bits.
        key_bits: u16,
    },
}

impl Encr {
    /// AES-128-CBC.
    pub const AES128_CBC: Self = Self::AesCbc { key_bits: 128 };
    /// AES-192-CBC.
    pub const AES192_CBC: Self = Self::AesCbc { key_bits: 192 };
    /// AES-256-CBC.
    pub const AES256_CBC: Self = Self::AesCbc { key_bits: 256 };

    /// True for combined-mode ciphers.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::Aead(_))
    }

    /// The wire transform (with the Key Length attribute where the cipher has one).
    pub fn transform(self) -> Transform {
        match self {
            Self::Aead(alg) => match alg.key_bits() {
                Some(bits) => {
                    Transform::with_key_length(TransformType::ENCR, alg.transform_id().0, bits)
                }
                None => Transform::new(TransformType::ENCR, alg.transform_id().0),
            },
            Self::AesCbc { key_bits } => {
                Transform::with_key_length(TransformType::ENCR, EncrId::AES_CBC.0, key_bits)
            }
        }
    }

    /// Maps a wire ENCR transform to a cipher this implementation supports.
    pub fn from_transform(t: &Transform) -> Option<Self> {
        if t.ty != TransformType::ENCR {
            return None;
        }
        let id = EncrId(t.id);
        if id == EncrId::AES_CBC {
            return match t.key_length {
                Some(bits @ (128 | 192 | 256)) => Some(Self::AesCbc { key_bits: bits }),
                _ => None,
            };
        }
        AeadAlgorithm::from_transform(id, t.key_length).map(Self::Aead)
    }

    /// Encryption key length in octets, without the AEAD salt.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aead(alg) => alg.key_len(),
            Self::AesCbc { key_bits } => usize::from(key_bits) / 8,
        }
    }

    /// Octets of keying material the transform takes from prf+: the key, plus the 4-octet
    /// salt for AEAD ciphers (RFC 4106 §8.1, RFC 5282 §7.1, RFC 7634 §2).
    pub fn keymat_len(self) -> usize {
        match self {
            Self::Aead(alg) => alg.keymat_len(),
            Self::AesCbc { .. } => self.key_len(),
        }
    }

    /// The canonical proposal-string keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Aead(AeadAlgorithm::Aes128Gcm) => "aes128gcm16",
            Self::Aead(AeadAlgorithm::Aes256Gcm) => "aes256gcm16",
            Self::Aead(AeadAlgorithm::ChaCha20Poly1305) => "chacha20poly1305",
            Self::AesCbc { key_bits: 128 } => "aes128",
            Self::AesCbc { key_bits: 192 } => "aes192",
            Self::AesCbc { .. } => "aes256",
        }
    }
}

impl fmt::Display for Encr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// One word of a proposal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Encr(Encr),
    Integ(IntegId),
    Prf(PrfId),
    Ke(KeId),
    Esn(EsnId),
}

/// Every keyword, with aliases after the canonical spelling of each algorithm.
const WORDS: &[(&str, Word)] = &[
    ("aes128", Word::Encr(Encr::AES128_CBC)),
    ("aes192", Word::Encr(Encr::AES192_CBC)),
    ("aes256", Word::Encr(Encr::AES256_CBC)),
    (
        "aes128gcm16",
        Word::Encr(Encr::Aead(AeadAlgorithm::Aes128Gcm)),
    ),
    (
        "aes128gcm128",
        Word::Encr(Encr::Aead(AeadAlgorithm::Aes128Gcm)),
    ),
    (
        "aes256gcm16",
        Word::Encr(Encr::Aead(AeadAlgorithm::Aes256Gcm)),
    ),
    (
        "aes256gcm128",
        Word::Encr(Encr::Aead(AeadAlgorithm::Aes256Gcm)),
    ),
    (
        "chacha20poly1305",
        Word::Encr(Encr::Aead(AeadAlgorithm::ChaCha20Poly1305)),
    ),
    ("sha256", Word::Integ(IntegId::HMAC_SHA2_256_128)),
    ("sha2_256", Word::Integ(IntegId::HMAC_SHA2_256_128)),
    ("sha384", Word::Integ(IntegId::HMAC_SHA2_384_192)),
    ("sha2_384", Word::Integ(IntegId::HMAC_SHA2_384_192)),
    ("sha512", Word::Integ(IntegId::HMAC_SHA2_512_256)),
    ("sha2_512", Word::Integ(IntegId::HMAC_SHA2_512_256)),
    ("prfsha256", Word::Prf(PrfId::HMAC_SHA2_256)),
    ("prfsha384", Word::Prf(PrfId::HMAC_SHA2_384)),
    ("prfsha512", Word::Prf(PrfId::HMAC_SHA2_512)),
    ("x25519", Word::Ke(KeId::CURVE25519)),
    ("curve25519", Word::Ke(KeId::CURVE25519)),
    ("ecp256", Word::Ke(KeId::ECP_256)),
    ("modp2048", Word::Ke(KeId::MODP_2048)),
    ("none", Word::Ke(KeId::NONE)),
    ("esn", Word::Esn(EsnId::ESN)),
    ("noesn", Word::Esn(EsnId::NO_ESN)),
];

fn lookup(word: &str) -> Option<Word> {
    WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map(|&(_, v)| v)
}

/// The canonical keyword of a word (the first spelling in [`WORDS`]).
fn canonical(word: Word) -> &'static str {
    WORDS
        .iter()
        .find(|(_, v)| *v == word)
        .map(|&(w, _)| w)
        .expect("every word has a keyword")
}

/// The PRF matching an integrity algorithm, for IKE proposals that name no PRF (strongSwan
/// semantics: `sha256` as integrity implies `prfsha256`).
fn prf_for_integ(integ: IntegId) -> Option<PrfId> {
    match integ {
        IntegId::HMAC_SHA2_256_128 => Some(PrfId::HMAC_SHA2_256),
        IntegId::HMAC_SHA2_384_192 => Some(PrfId::HMAC_SHA2_384),
        IntegId::HMAC_SHA2_512_256 => Some(PrfId::HMAC_SHA2_512),
        _ => None,
    }
}

// ------------------------------------------------------------------------------ configuration

/// Why a proposal configuration or string is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// A word that names no algorithm.
    #[error("unknown algorithm '{word}' in proposal '{proposal}'; known: {known}")]
    UnknownWord {
        /// The unknown word.
        word: String,
        /// The proposal it appeared in.
        proposal: String,
        /// Every known keyword, comma separated.
        known: String,
    },
    /// The proposal string or one proposal of it is empty.
    #[error("empty proposal")]
    Empty,
    /// The configuration breaks a rule of RFC 7296 §3.3 (the message says which).
    #[error("invalid {protocol} proposal '{proposal}': {reason}")]
    Invalid {
        /// "IKE" or "ESP".
        protocol: &'static str,
        /// The proposal as given (or as displayed).
        proposal: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Only IKE and ESP proposals are supported.
    #[error("unsupported protocol {0}")]
    UnsupportedProtocol(u8),
}

fn protocol_name(p: ProtocolId) -> &'static str {
    match p {
        ProtocolId::IKE => "IKE",
        ProtocolId::ESP => "ESP",
        ProtocolId::AH => "AH",
        _ => "unknown protocol",
    }
}

/// One proposal we offer (as initiator) or accept (as responder): an ordered list of
/// algorithms per transform type, most preferred first (RFC 7296 §3.3).
///
/// Invariants (checked by [`ProposalConfig::new`]): at least one cipher; ciphers are all
/// AEAD (then no INTEG) or all non-AEAD (then at least one INTEG); IKE proposals have at
/// least one PRF and one KE method other than NONE and no ESN; ESP proposals have no PRF
/// and at least one ESN value. An ESP proposal with an empty KE list negotiates no PFS;
/// one listing NONE among groups makes PFS optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProposalConfig {
    protocol: ProtocolId,
    encr: Vec<Encr>,
    integ: Vec<IntegId>,
    prf: Vec<PrfId>,
    ke: Vec<KeId>,
    esn: Vec<EsnId>,
}

fn dedup<T: PartialEq + Copy>(v: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for &x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

impl ProposalConfig {
    /// Builds and validates a proposal configuration. Duplicates are dropped, keeping the
    /// first occurrence. For an ESP proposal, an empty `esn` list means "no ESN".
    pub fn new(
        protocol: ProtocolId,
        encr: &[Encr],
        integ: &[IntegId],
        prf: &[PrfId],
        ke: &[KeId],
        esn: &[EsnId],
    ) -> Result<Self, ProposalError> {
        let mut cfg = Self {
            protocol,
            encr: dedup(encr),
            integ: dedup(integ),
            prf: dedup(prf),
            ke: dedup(ke),
            esn: dedup(esn),
        };
        if protocol == ProtocolId::ESP && cfg.esn.is_empty() {
            cfg.esn.push(EsnId::NO_ESN);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn invalid(&self, reason: &'static str) -> ProposalError {
        ProposalError::Invalid {
            protocol: protocol_name(self.protocol),
            proposal: self.to_string(),
            reason,
        }
    }

    fn validate(&self) -> Result<(), ProposalError> {
        let ike = match self.protocol {
            ProtocolId::IKE => true,
            ProtocolId::ESP => false,
            p => return Err(ProposalError::UnsupportedProtocol(p.0)),
        };
        if self.encr.is_empty() {
            return Err(self.invalid("no encryption algorithm"));
        }
        let aead = self.encr[0].is_aead();
        if self.encr.iter().any(|e| e.is_aead() != aead) {
            return Err(
                self.invalid("mixes AEAD and non-AEAD ciphers; write them as separate proposals")
            );
        }
        if aead && !self.integ.is_empty() {
            return Err(self.invalid("an AEAD cipher takes no integrity algorithm"));
        }
        if !aead && self.integ.is_empty() {
            return Err(self.invalid("a non-AEAD cipher needs an integrity algorithm"));
        }
        if self.integ.contains(&IntegId::NONE) {
            return Err(self.invalid("integrity NONE is implied by AEAD ciphers only"));
        }
        if ike {
            if self.prf.is_empty() {
                return Err(self.invalid("a PRF algorithm is mandatory in IKE proposals"));
            }
            if self.ke.is_empty() || self.ke.contains(&KeId::NONE) {
                return Err(self.invalid("IKE proposals need a key exchange method (not none)"));
            }
            if !self.esn.is_empty() {
                return Err(self.invalid("ESN applies to ESP proposals only"));
            }
        } else {
            if !self.prf.is_empty() {
                return Err(self.invalid("a PRF applies to IKE proposals only"));
            }
            if self.ke == [KeId::NONE] {
                return Err(self.invalid("'none' makes PFS optional: list a group with it"));
            }
            if self.esn.is_empty() {
                return Err(self.invalid("ESP proposals need esn or noesn"));
            }
        }
        Ok(())
    }

    /// Parses one proposal (no commas) for `protocol`.
    ///
    /// IKE: when no `prf…` word is given, each integrity algorithm implies the PRF of the
    /// same hash (`aes128-sha256-modp2048` offers prfsha256), as strongSwan does. An AEAD IKE
    /// proposal without a PRF word is an error, as in strongSwan (there is no integrity
    /// algorithm to derive it from, and silently choosing one would hide a configuration
    /// mistake). ESP: without `esn`/`noesn` the proposal offers `noesn`; without a group it
    /// negotiates no PFS.
    pub fn parse(protocol: ProtocolId, s: &str) -> Result<Self, ProposalError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ProposalError::Empty);
        }
        let (mut encr, mut integ, mut prf, mut ke, mut esn) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for word in s.split('-') {
            match lookup(word.trim()) {
                Some(Word::Encr(e)) => encr.push(e),
                Some(Word::Integ(i)) => integ.push(i),
                Some(Word::Prf(p)) => prf.push(p),
                Some(Word::Ke(k)) => ke.push(k),
                Some(Word::Esn(e)) => esn.push(e),
                None => {
                    return Err(ProposalError::UnknownWord {
                        word: word.to_string(),
                        proposal: s.to_string(),
                        known: WORDS.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        if protocol == ProtocolId::IKE && prf.is_empty() {
            prf = integ.iter().filter_map(|&i| prf_for_integ(i)).collect();
        }
        Self::new(protocol, &encr, &integ, &prf, &ke, &esn).map_err(|e| match e {
            ProposalError::Invalid {
                protocol, reason, ..
            } => ProposalError::Invalid {
                protocol,
                proposal: s.to_string(),
                reason,
            },
            e => e,
        })
    }

    /// IKE or ESP.
    pub fn protocol(&self) -> ProtocolId {
        self.protocol
    }
    /// Ciphers in preference order.
    pub fn encr(&self) -> &[Encr] {
        &self.encr
    }
    /// Integrity algorithms in preference order (empty with AEAD ciphers).
    pub fn integ(&self) -> &[IntegId] {
        &self.integ
    }
    /// PRFs in preference order (IKE only).
    pub fn prf(&self) -> &[PrfId] {
        &self.prf
    }
    /// KE methods in preference order; empty for an ESP proposal without PFS.
    pub fn ke(&self) -> &[KeId] {
        &self.ke
    }
    /// ESN values in preference order (ESP only).
    pub fn esn(&self) -> &[EsnId] {
        &self.esn
    }

    /// True if this proposal accepts the KE method `group` (NONE: no key exchange).
    pub fn accepts_ke(&self, group: KeId) -> bool {
        self.effective_ke().contains(&group)
    }

    /// The KE methods we accept, with an empty list read as NONE (§3.3.6).
    fn effective_ke(&self) -> Vec<KeId> {
        if self.ke.is_empty() {
            vec![KeId::NONE]
        } else {
            self.ke.clone()
        }
    }

    /// The first KE method of this proposal, to send a KE payload for as initiator;
    /// `None` for an ESP proposal without PFS.
    pub fn preferred_ke(&self) -> Option<KeId> {
        self.ke.first().copied().filter(|&k| k != KeId::NONE)
    }

    /// The wire proposal, numbered `num` (1 for the first, RFC 7296 §3.3.1), with `spi`
    /// (empty in an initial IKE_SA_INIT, 8 octets for IKE rekeying, 4 for ESP).
    ///
    /// Transforms are ordered ENCR, PRF, INTEG, KE, ESN, each type in our preference order.
    /// An AEAD proposal carries no INTEG transform (RFC 5282 §8); an ESP proposal without
    /// PFS carries no KE transform.
    pub fn to_proposal(&self, num: u8, spi: &[u8]) -> Proposal {
        let mut transforms = Vec::new();
        transforms.extend(self.encr.iter().map(|e| e.transform()));
        transforms.extend(
            self.prf
                .iter()
                .map(|p| Transform::new(TransformType::PRF, p.0)),
        );
        transforms.extend(
            self.integ
                .iter()
                .map(|i| Transform::new(TransformType::INTEG, i.0)),
        );
        transforms.extend(
            self.ke
                .iter()
                .map(|k| Transform::new(TransformType::KE, k.0)),
        );
        transforms.extend(
            self.esn
                .iter()
                .map(|e| Transform::new(TransformType::ESN, e.0)),
        );
        Proposal {
            num,
            protocol: self.protocol,
            spi: spi.to_vec(),
            transforms,
        }
    }
}

impl fmt::Display for ProposalConfig {
    /// The canonical proposal string: ciphers, integrity, PRFs, groups, then ESN (omitted
    /// when it is the default `noesn` alone). Parsing it gives back the same configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<&'static str> = Vec::new();
        words.extend(self.encr.iter().map(|&e| canonical(Word::Encr(e))));
        words.extend(self.integ.iter().map(|&i| canonical(Word::Integ(i))));
        words.extend(self.prf.iter().map(|&p| canonical(Word::Prf(p))));
        words.extend(self.ke.iter().map(|&k| canonical(Word::Ke(k))));
        if self.esn != [EsnId::NO_ESN] {
            words.extend(self.esn.iter().map(|&e| canonical(Word::Esn(e))));
        }
        f.write_str(&words.join("-"))
    }
}

/// Parses comma-separated proposals for `protocol`, e.g.
/// `"aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048"`.
pub fn parse_proposals(
    protocol: ProtocolId,
    s: &str,
) -> Result<Vec<ProposalConfig>, ProposalError> {
    s.split(',')
        .map(|p| ProposalConfig::parse(protocol, p))
        .collect()
}

/// The SA payload offering `configs`, numbered from 1 in order, each with `spi`.
///
/// # Panics
/// With more than 255 proposals (the number is one octet; a configuration error).
pub fn to_sa_payload(configs: &[ProposalConfig], spi: &[u8]) -> SaPayload {
    assert!(configs.len() <= 255, "at most 255 proposals");
    SaPayload {
        proposals: configs
            .iter()
            .enumerate()
            .map(|(i, c)| c.to_proposal(i as u8 + 1, spi))
            .collect(),
    }
}

/// The canonical display of `proposals`, comma separated.
pub fn display_proposals(proposals: &[ProposalConfig]) -> String {
    proposals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------------ negotiated

/// The algorithms of a negotiated proposal, as `ipsec_core` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NegotiatedSuite {
    /// IKE or ESP.
    pub protocol: ProtocolId,
    /// The cipher.
    pub encr: Encr,
    /// The integrity algorithm; `None` with an AEAD cipher.
    pub integ: Option<IntegId>,
    /// The PRF (IKE SAs only).
    pub prf: Option<PrfId>,
    /// The KE method; [`KeId::NONE`] for a Child SA without PFS.
    pub ke: KeId,
    /// Extended sequence numbers (ESP only).
    pub esn: bool,
}

impl NegotiatedSuite {
    /// The AEAD algorithm, if the cipher is one.
    pub fn aead(&self) -> Option<AeadAlgorithm> {
        match self.encr {
            Encr::Aead(a) => Some(a),
            Encr::AesCbc { .. } => None,
        }
    }

    /// The integrity key length in octets (RFC 4868 §2.1.1); 0 with an AEAD cipher.
    pub fn integ_key_len(&self) -> usize {
        self.integ
            .and_then(|i| i.key_and_icv_len())
            .map_or(0, |(k, _)| k)
    }

    /// The KE method, or `None` when no key exchange takes place.
    pub fn key_exchange(&self) -> Option<KeId> {
        (self.ke != KeId::NONE).then_some(self.ke)
    }

    /// The proposal string of this suite (e.g. `aes256gcm16-prfsha256-x25519`).
    pub fn to_config(&self) -> ProposalConfig {
        let esn = match (self.protocol, self.esn) {
            (ProtocolId::IKE, _) => vec![],
            (_, true) => vec![EsnId::ESN],
            (_, false) => vec![EsnId::NO_ESN],
        };
        ProposalConfig {
            protocol: self.protocol,
            encr: vec![self.encr],
            integ: self.integ.into_iter().collect(),
            prf: self.prf.into_iter().collect(),
            ke: self.key_exchange().into_iter().collect(),
            esn,
        }
    }
}

impl fmt::Display for NegotiatedSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.to_config().to_string();
        if self.protocol == ProtocolId::ESP && !self.esn {
            write!(f, "{s}-noesn")
        } else {
            f.write_str(&s)
        }
    }
}

/// How the KE payload received relates to the chosen proposal (RFC 7296 §1.2, §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeMatch {
    /// The KE payload (or its absence) matches the chosen KE method.
    Match,
    /// The KE payload is missing or for another group: answer INVALID_KE_PAYLOAD with this
    /// group (§1.2, §3.10.1), and the peer retries with it.
    InvalidKePayload {
        /// The group to put in the notification.
        requested: KeId,
    },
    /// A KE payload came although the chosen proposal has no key exchange (KE NONE); the
    /// request is malformed (INVALID_SYNTAX).
    Unexpected,
}

/// A proposal chosen by [`select`] or accepted by [`check_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The negotiated algorithms.
    pub suite: NegotiatedSuite,
    /// The proposal number (the peer's number for a responder; ours for an initiator).
    pub num: u8,
    /// The SPI carried in the peer's proposal: the initiator's SPI in a request, the
    /// responder's in a reply (RFC 7296 §3.3.1: "the sending entity's SPI").
    pub peer_spi: Vec<u8>,
    /// The chosen transforms, one per type, as they appeared in the peer's proposal
    /// (explicit NONE transforms kept, absent types left absent).
    pub transforms: Vec<Transform>,
}

impl Chosen {
    /// The proposal for our reply: the peer's proposal number and the chosen transforms,
    /// with **our** SPI (RFC 7296 §3.3.1: each side sends its own SPI; empty in
    /// IKE_SA_INIT, our new IKE SPI when rekeying an IKE SA, our inbound ESP SPI for a
    /// Child SA).
    pub fn response(&self, our_spi: &[u8]) -> Proposal {
        Proposal {
            num: self.num,
            protocol: self.suite.protocol,
            spi: our_spi.to_vec(),
            transforms: self.transforms.clone(),
        }
    }

    /// Checks the group of the peer's KE payload (`None` when the message has none)
    /// against the chosen KE method (RFC 7296 §1.2 for IKE_SA_INIT, §1.3 for
    /// CREATE_CHILD_SA).
    pub fn check_ke(&self, received: Option<KeId>) -> KeMatch {
        match (self.suite.key_exchange(), received) {
            (None, None) => KeMatch::Match,
            (None, Some(_)) => KeMatch::Unexpected,
            (Some(ours), Some(theirs)) if ours == theirs => KeMatch::Match,
            (Some(ours), _) => KeMatch::InvalidKePayload { requested: ours },
        }
    }
}

/// Does one of `configs` allow every algorithm of `suite` (the policy check when the
/// connection that authenticates a peer is not the one that negotiated its IKE SA)?
pub fn allows(configs: &[ProposalConfig], suite: &NegotiatedSuite) -> bool {
    configs.iter().any(|c| {
        c.protocol == suite.protocol
            && c.encr.contains(&suite.encr)
            && suite.integ.is_none_or(|i| c.integ.contains(&i))
            && suite.prf.is_none_or(|p| c.prf.contains(&p))
            && (suite.key_exchange().is_none() || c.ke.contains(&suite.ke))
    })
}

/// For an initiator that received INVALID_KE_PAYLOAD naming `requested`: the group to
/// retry with, if any of our proposals accepts it (RFC 7296 §1.2: otherwise the exchange
/// fails). NONE is never a valid request.
pub fn retry_group(ours: &[ProposalConfig], requested: KeId) -> Option<KeId> {
    (requested != KeId::NONE && ours.iter().any(|c| c.ke.contains(&requested))).then_some(requested)
}

// ------------------------------------------------------------------------------ report

/// A transform value as shown in a report: its proposal-string keyword, or a well-known
/// name for values we do not implement, or the raw number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransformName {
    /// The transform type.
    pub ty: TransformType,
    /// The transform ID.
    pub id: u16,
    /// The Key Length attribute, if any.
    pub key_length: Option<u16>,
}

impl From<&Transform> for TransformName {
    fn from(t: &Transform) -> Self {
        Self {
            ty: t.ty,
            id: t.id,
            key_length: t.key_length,
        }
    }
}

impl fmt::Display for TransformName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = Transform {
            ty: self.ty,
            id: self.id,
            key_length: self.key_length,
            other_attributes: Vec::new(),
        };
        if let Some(e) = Encr::from_transform(&t) {
            return f.write_str(e.keyword());
        }
        // Keywords for registry values we do not implement, as strongSwan spells them.
        let other = match (self.ty, self.id) {
            (TransformType::ENCR, 3) => Some("3des"),
            (TransformType::ENCR, 13) => Some("aesctr"),
            (TransformType::ENCR, 18) => Some("aesgcm8"),
            (TransformType::ENCR, 19) => Some("aesgcm12"),
            (TransformType::ENCR, 20) => Some("aesgcm16"),
            (TransformType::PRF, 1) => Some("prfmd5"),
            (TransformType::PRF, 2) => Some("prfsha1"),
            (TransformType::INTEG, 0) | (TransformType::KE, 0) => Some("none"),
            (TransformType::INTEG, 1) => Some("md5"),
            (TransformType::INTEG, 2) => Some("sha1"),
            (TransformType::KE, 1) => Some("modp768"),
            (TransformType::KE, 2) => Some("modp1024"),
            (TransformType::KE, 5) => Some("modp1536"),
            (TransformType::KE, 15) => Some("modp3072"),
            (TransformType::KE, 16) => Some("modp4096"),
            (TransformType::KE, 20) => Some("ecp384"),
            (TransformType::KE, 21) => Some("ecp521"),
            (TransformType::KE, 32) => Some("x448"),
            _ => None,
        };
        let word = match self.ty {
            TransformType::INTEG => lookup_id(|w| matches!(w, Word::Integ(i) if i.0 == self.id)),
            TransformType::PRF => lookup_id(|w| matches!(w, Word::Prf(p) if p.0 == self.id)),
            TransformType::KE => lookup_id(|w| matches!(w, Word::Ke(k) if k.0 == self.id)),
            TransformType::ESN => lookup_id(|w| matches!(w, Word::Esn(e) if e.0 == self.id)),
            _ => None,
        };
        match (word.or(other), self.key_length) {
            (Some(w), None) => f.write_str(w),
            (Some(w), Some(bits)) => write!(f, "{w}/{bits}"),
            (None, None) => write!(f, "{}#{}", self.ty, self.id),
            (None, Some(bits)) => write!(f, "{}#{}/{bits}", self.ty, self.id),
        }
    }
}

impl fmt::Debug for TransformName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn lookup_id(pred: impl Fn(&Word) -> bool) -> Option<&'static str> {
    WORDS.iter().find(|(_, w)| pred(w)).map(|&(n, _)| n)
}

struct List<'a>(&'a [TransformName]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{t}")?;
        }
        f.write_str("]")
    }
}

/// Why one peer proposal did not match one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The peer's proposal is for another protocol.
    Protocol {
        /// Ours.
        ours: ProtocolId,
        /// The peer's.
        peer: ProtocolId,
    },
    /// The SPI has the wrong size for the protocol (§3.3.1).
    SpiSize {
        /// The size received.
        len: usize,
    },
    /// No overlap for one transform type (`ours` and `peer` as the lists compared; an
    /// absent optional type shows as `[none]`).
    NoCommon {
        /// The transform type.
        ty: TransformType,
        /// What we accept.
        ours: Vec<TransformName>,
        /// What the peer offered.
        peer: Vec<TransformName>,
    },
    /// A mandatory transform type is missing from the peer's proposal (§3.3.3).
    Missing {
        /// The transform type.
        ty: TransformType,
    },
    /// A transform carries attributes we do not support (§3.3.6).
    UnsupportedAttribute {
        /// The transform's type.
        ty: TransformType,
    },
    /// The peer's proposal carries a transform type we do not support (§3.3.6).
    UnknownType {
        /// The raw type.
        ty: TransformType,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol { ours, peer } => write!(
                f,
                "peer proposes {}, we negotiate {}",
                protocol_name(*peer),
                protocol_name(*ours)
            ),
            Self::SpiSize { len } => write!(f, "invalid SPI size {len}"),
            Self::NoCommon { ty, ours, peer } => write!(
                f,
                "no common {ty}: we accept {}, peer offered {}",
                List(ours),
                List(peer)
            ),
            Self::Missing { ty } => write!(f, "peer offered no {ty} transform"),
            Self::UnknownType { ty } => write!(f, "unsupported transform type {}", ty.0),
            Self::UnsupportedAttribute { ty } => {
                write!(f, "{ty} transform with unsupported attributes")
            }
        }
    }
}

/// One peer proposal compared with one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalMismatch {
    /// The peer's proposal number.
    pub peer_num: u8,
    /// The index of our proposal (0-based) in the configuration.
    pub ours: usize,
    /// Every reason this pair did not match.
    pub reasons: Vec<Mismatch>,
}

/// NO_PROPOSAL_CHOSEN (RFC 7296 §2.7, §3.10.1) with the reasons, for logs and events.
///
/// Display gives one clause per (peer proposal, our proposal) pair, e.g.
/// `peer proposal 1 vs our proposal 1 (aes256gcm16-prfsha256-x25519): no common KE: we
/// accept [x25519], peer offered [modp1024]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoProposalChosen {
    /// Our proposals, in canonical strings.
    pub ours: Vec<String>,
    /// The comparisons that failed.
    pub mismatches: Vec<ProposalMismatch>,
}

impl fmt::Display for NoProposalChosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no proposal chosen")?;
        if self.mismatches.is_empty() {
            return f.write_str(": peer offered no proposal");
        }
        for (i, m) in self.mismatches.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(
                f,
                "peer proposal {} vs our proposal {} ({}): ",
                m.peer_num,
                m.ours + 1,
                self.ours.get(m.ours).map_or("?", String::as_str)
            )?;
            for (j, r) in m.reasons.iter().enumerate() {
                if j > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{r}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for NoProposalChosen {}

// ------------------------------------------------------------------------------ selection

/// The peer's transforms of one type, in the peer's order.
fn of_type(p: &Proposal, ty: TransformType) -> Vec<&Transform> {
    p.transforms.iter().filter(|t| t.ty == ty).collect()
}

fn names(ts: &[&Transform]) -> Vec<TransformName> {
    ts.iter().map(|t| TransformName::from(*t)).collect()
}

fn none_name(ty: TransformType) -> Vec<TransformName> {
    vec![TransformName {
        ty,
        id: 0,
        key_length: None,
    }]
}

fn spi_ok(protocol: ProtocolId, len: usize) -> bool {
    match protocol {
        ProtocolId::IKE => len == 0 || len == 8,
        _ => len == 4,
    }
}

/// Matches `peer` against `ours`, preferring our order (and `received_ke` for KE when both
/// sides accept it). Returns the suite and the chosen transforms, or every reason for
/// failure.
fn match_one(
    ours: &ProposalConfig,
    peer: &Proposal,
    received_ke: Option<KeId>,
) -> Result<(NegotiatedSuite, Vec<Transform>), Vec<Mismatch>> {
    if peer.protocol != ours.protocol {
        return Err(vec![Mismatch::Protocol {
            ours: ours.protocol,
            peer: peer.protocol,
        }]);
    }
    let mut reasons = Vec::new();
    if !spi_ok(peer.protocol, peer.spi.len()) {
        reasons.push(Mismatch::SpiSize {
            len: peer.spi.len(),
        });
    }
    for t in &peer.transforms {
        if !t.other_attributes.is_empty() {
            reasons.push(Mismatch::UnsupportedAttribute { ty: t.ty });
        }
        if !TransformType::KNOWN.contains(&t.ty)
            && t.id != 0
            && !reasons.contains(&Mismatch::UnknownType { ty: t.ty })
        {
            reasons.push(Mismatch::UnknownType { ty: t.ty });
        }
    }
    let ike = ours.protocol == ProtocolId::IKE;
    let mut out = Vec::new();

    // ENCR: the first of ours the peer offered (with the same Key Length).
    let p_encr = of_type(peer, TransformType::ENCR);
    let encr = ours
        .encr
        .iter()
        .find(|e| p_encr.contains(&&e.transform()))
        .copied();
    match encr {
        Some(e) => out.push(e.transform()),
        None if p_encr.is_empty() => reasons.push(Mismatch::Missing {
            ty: TransformType::ENCR,
        }),
        None => reasons.push(Mismatch::NoCommon {
            ty: TransformType::ENCR,
            ours: ours.encr.iter().map(|e| (&e.transform()).into()).collect(),
            peer: names(&p_encr),
        }),
    }

    // PRF: IKE only.
    let p_prf = of_type(peer, TransformType::PRF);
    let mut prf = None;
    if ike {
        prf = ours
            .prf
            .iter()
            .find(|p| p_prf.iter().any(|t| t.id == p.0 && t.key_length.is_none()))
            .copied();
        match prf {
            Some(p) => out.push(Transform::new(TransformType::PRF, p.0)),
            None if p_prf.is_empty() => reasons.push(Mismatch::Missing {
                ty: TransformType::PRF,
            }),
            None => reasons.push(Mismatch::NoCommon {
                ty: TransformType::PRF,
                ours: ours
                    .prf
                    .iter()
                    .map(|p| (&Transform::new(TransformType::PRF, p.0)).into())
                    .collect(),
                peer: names(&p_prf),
            }),
        }
    } else if !p_prf.is_empty() {
        reasons.push(Mismatch::NoCommon {
            ty: TransformType::PRF,
            ours: vec![],
            peer: names(&p_prf),
        });
    }

    // INTEG: with AEAD ciphers only NONE (absent or explicit); otherwise our first.
    let p_integ = of_type(peer, TransformType::INTEG);
    let aead = ours.encr[0].is_aead();
    let mut integ = None;
    if aead {
        match p_integ.iter().find(|t| t.id == IntegId::NONE.0) {
            Some(t) => out.push((*t).clone()),
            None if p_integ.is_empty() => {}
            None => reasons.push(Mismatch::NoCommon {
                ty: TransformType::INTEG,
                ours: none_name(TransformType::INTEG),
                peer: names(&p_integ),
            }),
        }
    } else {
        integ = ours
            .integ
            .iter()
            .find(|i| {
                p_integ
                    .iter()
                    .any(|t| t.id == i.0 && t.key_length.is_none())
            })
            .copied();
        match integ {
            Some(i) => out.push(Transform::new(TransformType::INTEG, i.0)),
            None => reasons.push(Mismatch::NoCommon {
                ty: TransformType::INTEG,
                ours: ours
                    .integ
                    .iter()
                    .map(|i| (&Transform::new(TransformType::INTEG, i.0)).into())
                    .collect(),
                peer: if p_integ.is_empty() {
                    none_name(TransformType::INTEG)
                } else {
                    names(&p_integ)
                },
            }),
        }
    }

    // KE: absent means NONE. Prefer the group of the KE payload received when both accept
    // it; otherwise our order.
    let p_ke = of_type(peer, TransformType::KE);
    let peer_has = |k: KeId| {
        if p_ke.is_empty() {
            k == KeId::NONE
        } else {
            p_ke.iter().any(|t| t.id == k.0 && t.key_length.is_none())
        }
    };
    let our_ke = ours.effective_ke();
    let ke = received_ke
        .filter(|&g| our_ke.contains(&g) && peer_has(g))
        .or_else(|| our_ke.iter().copied().find(|&k| peer_has(k)));
    match ke {
        Some(k) if !(k == KeId::NONE && p_ke.is_empty()) => {
            out.push(Transform::new(TransformType::KE, k.0))
        }
        Some(_) => {}
        None if ike && p_ke.is_empty() => reasons.push(Mismatch::Missing {
            ty: TransformType::KE,
        }),
        None => reasons.push(Mismatch::NoCommon {
            ty: TransformType::KE,
            ours: our_ke
                .iter()
                .map(|k| (&Transform::new(TransformType::KE, k.0)).into())
                .collect(),
            peer: if p_ke.is_empty() {
                none_name(TransformType::KE)
            } else {
                names(&p_ke)
            },
        }),
    }

    // ESN: ESP only; absent means no ESN.
    let p_esn = of_type(peer, TransformType::ESN);
    let mut esn = false;
    if ike {
        if !p_esn.is_empty() {
            reasons.push(Mismatch::NoCommon {
                ty: TransformType::ESN,
                ours: vec![],
                peer: names(&p_esn),
            });
        }
    } else {
        let peer_esn = |e: EsnId| {
            if p_esn.is_empty() {
                e == EsnId::NO_ESN
            } else {
                p_esn.iter().any(|t| t.id == e.0 && t.key_length.is_none())
            }
        };
        match ours.esn.iter().copied().find(|&e| peer_esn(e)) {
            Some(e) => {
                esn = e == EsnId::ESN;
                if !p_esn.is_empty() {
                    out.push(Transform::new(TransformType::ESN, e.0));
                }
            }
            None => reasons.push(Mismatch::NoCommon {
                ty: TransformType::ESN,
                ours: ours
                    .esn
                    .iter()
                    .map(|e| (&Transform::new(TransformType::ESN, e.0)).into())
                    .collect(),
                peer: if p_esn.is_empty() {
                    vec![(&Transform::new(TransformType::ESN, 0)).into()]
                } else {
                    names(&p_esn)
                },
            }),
        }
    }

    match (encr, ke) {
        (Some(encr), Some(ke)) if reasons.is_empty() => Ok((
            NegotiatedSuite {
                protocol: ours.protocol,
                encr,
                integ,
                prf,
                ke,
                esn,
            },
            out,
        )),
        _ => Err(reasons),
    }
}

/// Responder: chooses one of the peer's proposals (RFC 7296 §2.7).
///
/// Walks `ours` in order and, for each, the peer's proposals in their order; the first pair
/// that matches wins, and within it every transform type takes our most preferred value
/// that the peer offered (see the module docs for this policy and the KE exception).
/// `received_ke` is the group of the KE payload in the same message, if any.
///
/// Reply with [`Chosen::response`] and check the KE payload with [`Chosen::check_ke`].
pub fn select(
    ours: &[ProposalConfig],
    peer: &SaPayload,
    received_ke: Option<KeId>,
) -> Result<Chosen, NoProposalChosen> {
    let mut mismatches = Vec::new();
    for (i, cfg) in ours.iter().enumerate() {
        for p in &peer.proposals {
            match match_one(cfg, p, received_ke) {
                Ok((suite, transforms)) => {
                    return Ok(Chosen {
                        suite,
                        num: p.num,
                        peer_spi: p.spi.clone(),
                        transforms,
                    });
                }
                Err(reasons) => mismatches.push(ProposalMismatch {
                    peer_num: p.num,
                    ours: i,
                    reasons,
                }),
            }
        }
    }
    // Report protocol mismatches only when nothing of the right protocol was offered.
    if mismatches
        .iter()
        .any(|m| !matches!(m.reasons[..], [Mismatch::Protocol { .. }]))
    {
        mismatches.retain(|m| !matches!(m.reasons[..], [Mismatch::Protocol { .. }]));
    }
    Err(NoProposalChosen {
        ours: ours.iter().map(ToString::to_string).collect(),
        mismatches,
    })
}

/// Why the responder's SA payload is unacceptable to the initiator (RFC 7296 §2.7,
/// §3.3.6); the initiator treats the exchange as failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidResponse {
    /// The reply must carry exactly one proposal.
    #[error("reply carries {0} proposals, expected exactly one")]
    ProposalCount(usize),
    /// The proposal number is not one we sent.
    #[error("reply names proposal {0}, which we did not offer")]
    UnknownNumber(u8),
    /// The protocol differs from the proposal we sent with that number.
    #[error("reply proposal is for protocol {0}")]
    Protocol(u8),
    /// The SPI has the wrong size.
    #[error("reply SPI has invalid size {0}")]
    SpiSize(usize),
    /// More than one transform of a type.
    #[error("reply carries several {0} transforms")]
    Duplicate(TransformType),
    /// A transform we did not offer in that proposal.
    #[error("reply chose {0}, which we did not offer")]
    NotOffered(TransformName),
    /// A mandatory transform type is missing, or an absent type means NONE where we did
    /// not offer NONE.
    #[error("reply lacks a {0} transform")]
    Missing(TransformType),
}

/// Initiator: checks the responder's SA payload against what we offered
/// ([`to_sa_payload`] of the same `ours`, so proposal number n is `ours[n-1]`).
pub fn check_response(
    ours: &[ProposalConfig],
    reply: &SaPayload,
) -> Result<Chosen, InvalidResponse> {
    let [p] = &reply.proposals[..] else {
        return Err(InvalidResponse::ProposalCount(reply.proposals.len()));
    };
    let cfg = usize::from(p.num)
        .checked_sub(1)
        .and_then(|i| ours.get(i))
        .ok_or(InvalidResponse::UnknownNumber(p.num))?;
    if p.protocol != cfg.protocol {
        return Err(InvalidResponse::Protocol(p.protocol.0));
    }
    if !spi_ok(p.protocol, p.spi.len()) {
        return Err(InvalidResponse::SpiSize(p.spi.len()));
    }
    for ty in TransformType::KNOWN {
        if p.transforms.iter().filter(|t| t.ty == *ty).count() > 1 {
            return Err(InvalidResponse::Duplicate(*ty));
        }
    }
    // Every transform must be one we offered; matching the reply as if it were an offer
    // against our proposal then yields exactly its content.
    let offered = cfg.to_proposal(p.num, &[]);
    let aead = cfg.encr[0].is_aead();
    for t in &p.transforms {
        let ok = offered.transforms.contains(t)
            || (t.ty == TransformType::INTEG && t.id == 0 && t.key_length.is_none() && aead)
            || (t.ty == TransformType::KE
                && t.id == 0
                && t.key_length.is_none()
                && cfg.ke.is_empty()
                && cfg.protocol == ProtocolId::ESP);
        if !ok {
            return Err(InvalidResponse::NotOffered(t.into()));
        }
    }
    match match_one(cfg, p, None) {
        Ok((suite, transforms)) => Ok(Chosen {
            suite,
            num: p.num,
            peer_spi: p.spi.clone(),
            transforms,
        }),
        Err(reasons) => {
            let ty = reasons
                .iter()
                .find_map(|r| match r {
                    Mismatch::Missing { ty } | Mismatch::NoCommon { ty, .. } => Some(*ty),
                    _ => None,
                })
                .unwrap_or(TransformType::ENCR);
            Err(InvalidResponse::Missing(ty))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_round_trips() {
        for (w, word) in WORDS {
            assert_eq!(lookup(w), Some(*word));
            assert_eq!(lookup(canonical(*word)), Some(*word));
        }
    }
}

//! IKEv2 message fragmentation (RFC 7383): the Encrypted Fragment payload (SKF, §2.5) and
//! bounded reassembly of authenticated fragments (§2.6).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Fragment Number        |        Total Fragments        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Initialization Vector                       |
//! ~                      Encrypted content                        ~
//! ~                    Integrity Checksum Data                    ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Fragments are produced by [`SkCipher::seal_fragments`](super::SkCipher::seal_fragments)
//! and verified one by one by
//! [`SkCipher::open_fragment`](super::SkCipher::open_fragment), which is the only way to get
//! a [`Fragment`]: a [`FragmentReassembler`] therefore only ever stores authenticated
//! content. The reassembler is bounded in fragment count and total octets.
//!
//! Reassembly rules (§2.6.1): a fragment whose Total Fragments is larger than the one being
//! collected restarts reassembly (the sender re-fragmented a retransmission with a smaller
//! size); one with a smaller value is discarded; duplicates are ignored. A fragment for a
//! different Message ID restarts reassembly; the caller must check the Message ID against
//! its window before pushing.

use super::codec::Reader;
use super::decode_chain;
use super::error::DecodeError;
use super::header::{IkeHeader, PayloadType};
use super::sk::OpenedMessage;

/// One authenticated, decrypted fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub(crate) header: IkeHeader,
    pub(crate) number: u16,
    pub(crate) total: u16,
    pub(crate) first_payload: PayloadType,
    pub(crate) plain: Vec<u8>,
}

impl Fragment {
    /// The IKE header of this fragment's datagram.
    pub fn header(&self) -> &IkeHeader {
        &self.header
    }

    /// Fragment Number (1-based).
    pub fn number(&self) -> u16 {
        self.number
    }

    /// Total Fragments.
    pub fn total(&self) -> u16 {
        self.total
    }

    /// The Next Payload field of the SKF payload (the first inner payload type in
    /// fragment 1).
    pub fn first_payload(&self) -> PayloadType {
        self.first_payload
    }

    /// The decrypted content octets.
    pub fn content(&self) -> &[u8] {
        &self.plain
    }
}

/// Bounds of one reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Largest Total Fragments accepted.
    pub max_fragments: u16,
    /// Largest sum of decrypted fragment contents, in octets.
    pub max_bytes: usize,
}

impl Default for ReassemblyLimits {
    /// 64 fragments and 64 KiB: far above any IKE_AUTH with a certificate chain.
    fn default() -> Self {
        Self {
            max_fragments: 64,
            max_bytes: 64 * 1024,
        }
    }
}

/// Why a fragment was refused or reassembly failed. Reassembly state is cleared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// Total Fragments above [`ReassemblyLimits::max_fragments`].
    #[error("{total} fragments exceed the limit of {max}")]
    TooManyFragments {
        /// Total Fragments received.
        total: u16,
        /// The limit.
        max: u16,
    },
    /// Reassembled content above [`ReassemblyLimits::max_bytes`].
    #[error("reassembled message of {bytes} octets exceeds the limit of {max}")]
    TooLarge {
        /// Octets collected including this fragment.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The reassembled payload chain is malformed (answer INVALID_SYNTAX). Offsets are
    /// relative to the start of the reassembled content.
    #[error("reassembled payloads: {0}")]
    Decode(DecodeError),
}

/// What identifies one fragmented message of an IKE SA direction: requests and responses
/// share the inbound key and overlapping Message IDs, so the ID alone is not enough.
type MessageKey = (u32, bool, super::header::ExchangeType);

fn key_of(h: &IkeHeader) -> MessageKey {
    (h.message_id, h.flags.response(), h.exchange_type)
}

#[derive(Debug)]
struct InProgress {
    key: MessageKey,
    total: u16,
    header: Option<IkeHeader>,
    first_payload: PayloadType,
    parts: Vec<Option<Vec<u8>>>,
    have: usize,
    bytes: usize,
}

/// Collects authenticated fragments of one message (per IKE SA and direction).
#[derive(Debug, Default)]
pub struct FragmentReassembler {
    limits: ReassemblyLimits,
    state: Option<InProgress>,
    completed: Option<MessageKey>,
}

impl FragmentReassembler {
    /// A reassembler with the given limits.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            state: None,
            completed: None,
        }
    }

    /// Drops any partial message.
    pub fn clear(&mut self) {
        self.state = None;
    }

    /// Message ID of the message being collected, if any.
    pub fn message_id(&self) -> Option<u32> {
        self.state.as_ref().map(|s| s.key.0)
    }

    /// Adds an authenticated fragment; returns the whole message once every fragment has
    /// arrived. Storage is bounded by the limits.
    pub fn push(&mut self, frag: Fragment) -> Result<Option<OpenedMessage>, ReassemblyError> {
        let key = key_of(&frag.header);
        if self.completed == Some(key) {
            return Ok(None);
        }
        if frag.total > self.limits.max_fragments {
            return Err(ReassemblyError::TooManyFragments {
                total: frag.total,
                max: self.limits.max_fragments,
            });
        }
        let restart = match &self.state {
            None => true,
            Some(s) => s.key != key || frag.total > s.total,
        };
        if restart {
            self.state = Some(InProgress {
                key,
                total: frag.total,
                header: None,
                first_payload: PayloadType::NONE,
                parts: vec![None; usize::from(frag.total)],
                have: 0,
                bytes: 0,
            });
        }
        let Some(s) = self.state.as_mut() else {
            return Ok(None);
        };
        if frag.total < s.total {
            return Ok(None);
        }
        let idx = usize::from(frag.number).wrapping_sub(1);
        let Some(slot) = s.parts.get_mut(idx) else {
            return Ok(None);
        };
        if slot.is_some() {
            return Ok(None);
        }
        let bytes = s.bytes + frag.plain.len();
        if bytes > self.limits.max_bytes {
            self.state = None;
            return Err(ReassemblyError::TooLarge {
                bytes,
                max: self.limits.max_bytes,
            });
        }
        if frag.number == 1 {
            s.header = Some(frag.header);
            s.first_payload = frag.first_payload;
        }
        *slot = Some(frag.plain);
        s.bytes = bytes;
        s.have += 1;
        if s.have < s.parts.len() {
            return Ok(None);
        }
        let Some(s) = self.state.take() else {
            return Ok(None);
        };
        self.completed = Some(s.key);
        let mut content = Vec::with_capacity(s.bytes);
        for p in s.parts.into_iter().flatten() {
            content.extend_from_slice(&p);
        }
        let header = s.header.unwrap_or(frag.header);
        let mut r = Reader::new(&content, 0, None);
        let payloads =
            decode_chain(&mut r, s.first_payload, false).map_err(ReassemblyError::Decode)?;
        Ok(Some(OpenedMessage {
            header,
            clear: Vec::new(),
            payloads,
        }))
    }
}

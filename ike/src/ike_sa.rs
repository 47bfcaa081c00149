//! The state of one IKE SA and its Child SAs (RFC 7296 §2, §2.17), and the per-SA message
//! bookkeeping: message IDs and the request window (§2.3), the retransmission of our
//! outstanding request (§2.1) and the cached response to the peer's last request (§2.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ipsec_core::crypto::KeyExchange;
use ipsec_core::{CryptoProvider, IkeSpi, Mode, Spi, TrafficSelector};

use crate::config::{ChildConfig, Identity, PeerConfig};
use crate::event::{ChildSaId, ChildSaInfo, CloseReason, IkeSaHandle};
use crate::keys::IkeSaKeys;
use crate::message::header::{ExchangeType, Flags, IkeHeader};
use crate::message::{Payload, SkCipher, SkError, SkTransform};
use crate::nat::NatStatus;
use crate::proposal::NegotiatedSuite;

/// Where an IKE SA is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IkeState {
    /// Initiator: IKE_SA_INIT request sent.
    InitSent,
    /// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH (half-open).
    InitAnswered,
    /// Initiator: IKE_AUTH request sent.
    AuthSent,
    /// Authenticated.
    Established,
    /// Our Delete of the IKE SA is outstanding.
    Deleting,
    /// Replaced by a rekeyed IKE SA (§2.8): owns no Child SAs any more and only waits for
    /// the Delete exchange that ends it (ours, or the peer's).
    Rekeyed,
}

/// What our outstanding request is for.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// IKE_SA_INIT.
    Init,
    /// IKE_AUTH with the first Child SA.
    Auth(Box<PendingChild>),
    /// Empty INFORMATIONAL: liveness check (§1.4).
    Dpd,
    /// INFORMATIONAL Delete of the IKE SA (§1.4.1).
    DeleteIke,
    /// INFORMATIONAL Delete of Child SAs (§1.4.1).
    DeleteChildren(Vec<ChildSaId>),
    /// CREATE_CHILD_SA for an additional Child SA (§1.3.1) or a Child SA rekey (§1.3.3).
    CreateChild(Box<ChildRequest>),
    /// CREATE_CHILD_SA rekeying the IKE SA (§1.3.2).
    RekeyIke,
}

/// What a CREATE_CHILD_SA for a Child SA asks for. The TS and mode are the negotiated ones
/// of the Child SA being rekeyed (§2.8: a rekey keeps them), or the configured ones.
#[derive(Debug, Clone)]
pub(crate) struct ChildRequest {
    pub config: ChildConfig,
    pub ts_local: Vec<TrafficSelector>,
    pub ts_remote: Vec<TrafficSelector>,
    pub mode: Mode,
    /// The Child SA this one replaces (REKEY_SA, §1.3.3).
    pub rekey: Option<ChildSaId>,
    /// The KE group to use instead of our preferred one (after INVALID_KE_PAYLOAD).
    pub group: Option<ipsec_core::transform::KeId>,
    /// INVALID_KE_PAYLOAD rounds so far.
    pub ke_retries: u32,
}

/// The peer's CREATE_CHILD_SA that we answered while ours for the same SA was outstanding:
/// one half of a collision (§2.8.1, §2.8.2). `created` is the Child SA or IKE SA it made.
#[derive(Debug, Clone)]
pub(crate) struct PeerExchange {
    pub child: Option<ChildSaId>,
    pub ike: Option<IkeSaHandle>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
}

/// The state of our CREATE_CHILD_SA in flight: the secrets and SPIs chosen when it was
/// sent, and what the peer did to the same SA meanwhile.
pub(crate) struct CreateState {
    pub ni: Vec<u8>,
    pub ke: Option<Box<dyn KeyExchange>>,
    /// Our new inbound ESP SPI (Child SA) or new IKE SPI (IKE SA rekey).
    pub child_spi: Spi,
    pub ike_spi: IkeSpi,
    /// The peer rekeyed the same SA meanwhile and we answered (a collision).
    pub peer: Option<PeerExchange>,
    /// The caller deleted the Child SA being rekeyed meanwhile: the new one is deleted too.
    pub abandoned: bool,
}

/// A Child SA we proposed and await the answer for.
#[derive(Debug, Clone)]
pub(crate) struct PendingChild {
    pub config: ChildConfig,
    pub inbound_spi: Spi,
}

/// Our request in flight (window size 1, §2.3).
pub(crate) struct Outstanding {
    pub msg_id: u32,
    pub request: Request,
    /// The datagram(s) as sent, for retransmission.
    pub datagram: Vec<u8>,
    /// Transmissions so far (1 after the first send).
    pub sends: u32,
    pub retransmit_at: Instant,
    /// CREATE_CHILD_SA only.
    pub create: Option<CreateState>,
}

/// A Child SA.
#[derive(Debug, Clone)]
pub(crate) struct ChildSa {
    pub id: ChildSaId,
    pub config: ChildConfig,
    pub inbound_spi: Spi,
    pub outbound_spi: Spi,
    pub ts_local: Vec<TrafficSelector>,
    pub ts_remote: Vec<TrafficSelector>,
    pub mode: Mode,
    pub suite: NegotiatedSuite,
    /// Hard lifetime (from the child's `life_time`).
    pub expire_at: Option<Instant>,
    /// Soft lifetime: rekey then (the child's `rekey_time` less a random 0–10 %).
    pub rekey_at: Option<Instant>,
    /// Reported to the caller (by [`crate::Event::ChildSaInboundReady`] or
    /// [`crate::Event::ChildSaEstablished`]); only reported Child SAs are reported deleted.
    pub reported: bool,
    /// The outbound SA is in use. False for a Child SA made by the peer's rekey until the
    /// peer has shown that it installed its inbound SA (it deleted the replaced one, §2.8);
    /// the full event is kept here until then.
    pub pending: Option<Box<ChildSaInfo>>,
    /// The Child SA that replaces this one (our rekey or the peer's).
    pub successor: Option<ChildSaId>,
    /// Lost a rekey collision (§2.8.1): its creator deletes it; never activated.
    pub redundant: bool,
    /// Made by the peer's request with this message ID: a later request of the peer proves
    /// it has our response (window of 1, §2.3), so the SA may be activated then.
    pub made_by_request: Option<u32>,
}

impl ChildSa {
    /// In use for sending.
    pub fn active(&self) -> bool {
        self.pending.is_none()
    }
}

/// SK protection for both directions once keys exist.
pub(crate) struct Protection<P: CryptoProvider> {
    pub outbound: SkCipher<P>,
    pub inbound: SkCipher<P>,
}

/// One IKE SA.
pub(crate) struct IkeSa<P: CryptoProvider> {
    pub handle: IkeSaHandle,
    /// We are the original initiator (I flag).
    pub initiator: bool,
    pub state: IkeState,
    /// Did we ever report this SA to the caller (IkeSaEstablished, or `connect`)?
    pub announced: bool,
    pub peer: Option<Arc<PeerConfig>>,
    pub spi_i: IkeSpi,
    pub spi_r: IkeSpi,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub remote_id: Option<Identity>,
    pub suite: Option<NegotiatedSuite>,
    pub keys: Option<IkeSaKeys>,
    pub protection: Option<Protection<P>>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// Initiator: our ephemeral key exchange until the IKE_SA_INIT response.
    pub ke: Option<Box<dyn KeyExchange>>,
    /// The IKE_SA_INIT request and response as sent/received (signed by AUTH, §2.15).
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    /// Initiator: COOKIE to echo, and how many cookie / INVALID_KE rounds happened.
    pub cookie: Option<Vec<u8>>,
    pub init_retries: u32,
    pub nat: NatStatus,
    /// Initiator with `force_encap`: we faked our NAT_DETECTION_SOURCE_IP hash.
    pub fake_nat: bool,
    /// Next message ID for our requests.
    pub next_msg_id: u32,
    pub outstanding: Option<Outstanding>,
    /// Queued requests waiting for the window.
    pub queued: std::collections::VecDeque<Request>,
    /// Message ID the peer's next request must carry.
    pub peer_msg_id: u32,
    /// The peer's last request and our response to it, for retransmissions (§2.1).
    pub last_request: Vec<u8>,
    pub last_response: Option<Vec<u8>>,
    pub children: Vec<ChildSa>,
    /// Last time an authenticated message arrived from the peer (DPD, §1.4).
    pub last_heard: Instant,
    pub half_open_deadline: Option<Instant>,
    /// Responder: this SA's entry in the endpoint's half-open table, until IKE_AUTH.
    pub half_open_key: Option<(IkeSpi, SocketAddr)>,
    pub next_keepalive: Option<Instant>,
    /// Soft lifetime of the IKE SA: rekey then.
    pub rekey_at: Option<Instant>,
    /// Hard lifetime of the IKE SA: delete it then.
    pub expire_at: Option<Instant>,
    /// The KE group for our next IKE SA rekey instead of the negotiated one (after
    /// INVALID_KE_PAYLOAD), and how many such rounds happened.
    pub rekey_group: Option<ipsec_core::transform::KeId>,
    pub rekey_ke_retries: u32,
    /// Why our outstanding Delete of this IKE SA is being sent (reported when it ends).
    pub closing: Option<CloseReason>,
    /// Requests to queue at an instant (retries after TEMPORARY_FAILURE, §2.25).
    pub delayed: Vec<(Instant, Request)>,
    /// Consecutive TEMPORARY_FAILURE answers (§2.25: close when it goes on for minutes).
    pub temporary_failures: u32,
    /// ESP SPIs the peer deleted before we knew them (a Delete overtaking the response
    /// that creates them); bounded.
    pub deleted_unknown: std::collections::VecDeque<Spi>,
    /// Made by the peer's IKE SA rekey that collided with ours (§2.8.2): the old IKE SA
    /// whose Child SAs move here if the peer uses this SA.
    pub adopt_from: Option<IkeSaHandle>,
    /// Rekeyed (or redundant) IKE SA waiting for the peer's Delete: forget it silently then.
    pub forget_at: Option<Instant>,
}

impl<P: CryptoProvider> IkeSa<P> {
    pub fn new(
        handle: IkeSaHandle,
        initiator: bool,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Self {
        Self {
            handle,
            initiator,
            state: if initiator {
                IkeState::InitSent
            } else {
                IkeState::InitAnswered
            },
            announced: false,
            peer: None,
            spi_i: IkeSpi::ZERO,
            spi_r: IkeSpi::ZERO,
            local,
            remote,
            remote_id: None,
            suite: None,
            keys: None,
            protection: None,
            ni: Vec::new(),
            nr: Vec::new(),
            ke: None,
            init_request: Vec::new(),
            init_response: Vec::new(),
            cookie: None,
            init_retries: 0,
            nat: NatStatus::default(),
            fake_nat: false,
            next_msg_id: 0,
            outstanding: None,
            queued: Default::default(),
            peer_msg_id: 0,
            last_request: Vec::new(),
            last_response: None,
            children: Vec::new(),
            last_heard: now,
            half_open_deadline: None,
            half_open_key: None,
            next_keepalive: None,
            rekey_at: None,
            expire_at: None,
            rekey_group: None,
            rekey_ke_retries: 0,
            closing: None,
            delayed: Vec::new(),
            temporary_failures: 0,
            deleted_unknown: Default::default(),
            adopt_from: None,
            forget_at: None,
        }
    }

    /// Our SPI: the one the peer's messages are looked up by.
    pub fn local_spi(&self) -> IkeSpi {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    /// A header for a message we send.
    pub fn header(&self, exchange: ExchangeType, response: bool, msg_id: u32) -> IkeHeader {
        IkeHeader::new(
            self.spi_i,
            self.spi_r,
            exchange,
            Flags::new(self.initiator, response),
            msg_id,
        )
    }

    /// Installs SK protection from the derived keys (§2.14: SK_ei/SK_ai protect the
    /// initiator's messages).
    pub fn protect_with(&mut self, provider: &P, keys: IkeSaKeys) -> Result<(), SkError> {
        let suite = keys.suite;
        let t = suite.encr.transform();
        let transform = SkTransform::from_negotiated(
            ipsec_core::transform::EncrId(t.id),
            t.key_length,
            suite.integ,
        )
        .ok_or(SkError::Malformed(
            "negotiated suite cannot protect SK payloads",
        ))?;
        let (e_out, a_out, e_in, a_in) = if self.initiator {
            (&keys.sk_ei, &keys.sk_ai, &keys.sk_er, &keys.sk_ar)
        } else {
            (&keys.sk_er, &keys.sk_ar, &keys.sk_ei, &keys.sk_ai)
        };
        let outbound = SkCipher::new(provider, transform, e_out, a_out)?;
        let inbound = SkCipher::new(provider, transform, e_in, a_in)?;
        self.protection = Some(Protection { outbound, inbound });
        self.suite = Some(suite);
        self.keys = Some(keys);
        Ok(())
    }

    /// Encrypts `payloads` into a complete message.
    pub fn seal(
        &mut self,
        exchange: ExchangeType,
        response: bool,
        msg_id: u32,
        payloads: &[Payload],
    ) -> Result<Vec<u8>, SkError> {
        let header = self.header(exchange, response, msg_id);
        let p = self
            .protection
            .as_mut()
            .ok_or(SkError::NoEncryptedPayload)?;
        p.outbound.seal_to_vec(&header, payloads)
    }

    pub fn child(&self, id: ChildSaId) -> Option<&ChildSa> {
        self.children.iter().find(|c| c.id == id)
    }

    pub fn child_mut(&mut self, id: ChildSaId) -> Option<&mut ChildSa> {
        self.children.iter_mut().find(|c| c.id == id)
    }

    /// Is a Delete of this Child SA queued or outstanding (we are closing it)?
    pub fn deleting_child(&self, id: ChildSaId) -> bool {
        let is = |r: &Request| matches!(r, Request::DeleteChildren(ids) if ids.contains(&id));
        self.outstanding.as_ref().is_some_and(|o| is(&o.request)) || self.queued.iter().any(is)
    }

    /// Is our rekey of this Child SA queued or outstanding?
    pub fn rekeying_child(&self, id: ChildSaId) -> bool {
        let is = |r: &Request| matches!(r, Request::CreateChild(c) if c.rekey == Some(id));
        self.outstanding.as_ref().is_some_and(|o| is(&o.request))
            || self.queued.iter().any(is)
            || self.delayed.iter().any(|(_, r)| is(r))
    }

    /// Is our IKE SA rekey queued or outstanding?
    pub fn rekeying_ike(&self) -> bool {
        let is = |r: &Request| matches!(r, Request::RekeyIke);
        self.outstanding.as_ref().is_some_and(|o| is(&o.request))
            || self.queued.iter().any(is)
            || self.delayed.iter().any(|(_, r)| is(r))
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, IkeState::Established | IkeState::Deleting)
    }
}

//! The sans-IO IKEv2 endpoint: every IKE SA of this host, initiator and responder at once.
//!
//! The endpoint never touches a socket or a clock. Feed it with
//! [`Endpoint::handle`] (a received UDP payload), [`Endpoint::handle_timeout`] (when the
//! deadline from [`Endpoint::poll_timeout`] passes) and the commands ([`Endpoint::connect`],
//! [`Endpoint::close`], [`Endpoint::create_child_sa`], [`Endpoint::rekey_child_sa`],
//! [`Endpoint::rekey_ike_sa`], [`Endpoint::delete_child_sa`], [`Endpoint::probe`],
//! [`Endpoint::handle_esp_event`]). After each of those, drain [`Endpoint::poll_event`]
//! first (install inbound ESP SAs before anything is sent that the peer could answer with
//! ESP), then [`Endpoint::poll_transmit`], then read [`Endpoint::poll_timeout`] again.
//!
//! Malformed, unauthenticated or out-of-window datagrams are never errors: they are dropped,
//! counted in [`EndpointStats`] and traced at debug level, and the SA they concern is left as
//! it was (RFC 7296 §2.21: a responder answers an unprotected message only where the RFC
//! says so).
//!
//! Each IKE SA has two independent windows of size 1 (§2.3): our request in flight (further
//! ones queue behind it) and the peer's, which we answer at once. Both may concern the same
//! SA at the same time; the collision rules of §2.8.1, §2.8.2 and §2.25 are in
//! `exchange/create_child_sa.rs`.
//!
//! Lifetimes (§2.8): a Child SA is rekeyed at its `rekey_time` less a random 0–10 % (so
//! that both peers rarely start together) and deleted at its `life_time`; an IKE SA is
//! rekeyed at [`PeerConfig::rekey_time`] likewise and deleted at its `life_time`. A failed
//! rekey is tried again after [`EndpointConfig::rekey_retry`]. The ESP engine's byte and
//! packet limits arrive through [`Endpoint::handle_esp_event`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ipsec_core::natt::{IKE_PORT, NON_ESP_MARKER};
use ipsec_core::{CryptoProvider, IkeSpi, Spi};
use tracing::{debug, info};

use crate::config::{EndpointConfig, PeerConfig};
use crate::cookie::CookieJar;
use crate::event::{ChildSaId, CloseReason, Event, IkeSaHandle};
use crate::ike_sa::{ChildRequest, CreateState, IkeSa, IkeState, Outstanding, Request};
use crate::message::header::{ExchangeType, IkeHeader};
use crate::message::{DecodeErrorKind, Payload, SkError};

/// A received UDP datagram carrying IKE.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Our address and port it arrived on.
    pub local: SocketAddr,
    /// The sender's address and port.
    pub remote: SocketAddr,
    /// The UDP payload exactly as received: on port 500 the IKE message, on any other port
    /// (4500) the non-ESP marker followed by the IKE message (RFC 3948 §2.2).
    pub payload: &'a [u8],
}

/// A datagram to send; its payload was written into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Send from this address and port.
    pub local: SocketAddr,
    /// Send to this address and port.
    pub remote: SocketAddr,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a well-formed IKE message.
    Malformed,
    /// Received on port 4500 without the non-ESP marker.
    MissingNonEspMarker,
    /// No IKE SA with this SPI.
    UnknownSpi,
    /// The integrity check of the SK payload failed.
    IntegrityFailed,
    /// A request outside the window, or a response to nothing outstanding (§2.3).
    OutOfWindow,
    /// A message that does not fit the SA's state.
    Unexpected,
    /// Too many half-open SAs.
    HalfOpenLimit,
    /// An IKE_SA_INIT request without a valid COOKIE under load (answered with a COOKIE).
    CookieRequired,
    /// A major version above 2 (§2.5).
    UnsupportedVersion,
}

/// Counters of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to [`Endpoint::handle`].
    pub received: u64,
    /// Datagrams produced by [`Endpoint::poll_transmit`].
    pub transmitted: u64,
    /// Our requests sent again after a timeout.
    pub retransmits: u64,
    /// Cached responses sent again for a retransmitted request.
    pub responses_resent: u64,
    /// COOKIE notifies sent.
    pub cookies_sent: u64,
    /// Drops by reason.
    pub dropped: BTreeMap<DropReason, u64>,
}

impl EndpointStats {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }
}

/// What was negotiated for one Child SA (see [`Endpoint::child_sa`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaSummary {
    /// Child configuration name.
    pub name: String,
    /// Our SPI.
    pub inbound_spi: Spi,
    /// The peer's SPI.
    pub outbound_spi: Spi,
    /// Narrowed local selectors.
    pub ts_local: Vec<ipsec_core::TrafficSelector>,
    /// Narrowed remote selectors.
    pub ts_remote: Vec<ipsec_core::TrafficSelector>,
    /// Tunnel or transport.
    pub mode: ipsec_core::Mode,
    /// ESP suite, strongSwan notation.
    pub suite: String,
}

/// Caller mistakes on commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No IKE SA with this handle.
    #[error("no such IKE SA")]
    UnknownSa,
    /// No Child SA with this id.
    #[error("no such Child SA")]
    UnknownChildSa,
    /// The IKE SA is not established yet (or is being deleted).
    #[error("IKE SA not established")]
    NotEstablished,
    /// The peer configuration cannot be used.
    #[error("invalid peer configuration: {0}")]
    InvalidConfig(String),
    /// The crypto provider failed.
    #[error("crypto provider failure: {0}")]
    Crypto(String),
}

/// Every IKE SA of this host. `P` is the crypto provider.
pub struct Endpoint<P: CryptoProvider> {
    pub(crate) config: Arc<EndpointConfig>,
    pub(crate) provider: Arc<P>,
    pub(crate) sas: BTreeMap<IkeSaHandle, IkeSa<P>>,
    /// Our IKE SPI → SA (our SPIs are unique across the endpoint).
    pub(crate) by_spi: HashMap<IkeSpi, IkeSaHandle>,
    /// Responder half-open SAs by (SPIi, peer address), to recognise retransmitted
    /// IKE_SA_INIT requests.
    pub(crate) half_open: HashMap<(IkeSpi, SocketAddr), IkeSaHandle>,
    /// Half-open SAs per peer IP address.
    pub(crate) half_open_by_ip: HashMap<std::net::IpAddr, usize>,
    pub(crate) cookies: CookieJar,
    next_handle: u64,
    next_child: u64,
    transmits: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    /// [`Event::ChildSaInboundExpired`] events due at their instants (in order: the grace
    /// period is one constant).
    pub(crate) inbound_expiries: VecDeque<(Instant, Event)>,
    pub(crate) stats: EndpointStats,
}

impl<P: CryptoProvider> Endpoint<P> {
    /// An endpoint with no SAs.
    pub fn new(config: Arc<EndpointConfig>, provider: Arc<P>) -> Self {
        let cookies = CookieJar::new(&*provider, config.cookie_rotation);
        Self {
            config,
            provider,
            sas: BTreeMap::new(),
            by_spi: HashMap::new(),
            half_open: HashMap::new(),
            half_open_by_ip: HashMap::new(),
            cookies,
            next_handle: 1,
            next_child: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            inbound_expiries: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<EndpointConfig> {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Handles of all IKE SAs, including ones still being negotiated.
    pub fn ike_sas(&self) -> impl Iterator<Item = IkeSaHandle> + '_ {
        self.sas.keys().copied()
    }

    /// Is this IKE SA established?
    pub fn is_established(&self, sa: IkeSaHandle) -> bool {
        self.sas.get(&sa).is_some_and(|s| s.is_established())
    }

    /// Child SAs of an IKE SA: (id, our inbound SPI, the peer's SPI).
    pub fn child_sas(&self, sa: IkeSaHandle) -> Vec<(ChildSaId, Spi, Spi)> {
        self.sas
            .get(&sa)
            .map(|s| {
                s.children
                    .iter()
                    .map(|c| (c.id, c.inbound_spi, c.outbound_spi))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What was negotiated for a Child SA.
    pub fn child_sa(&self, id: ChildSaId) -> Option<ChildSaSummary> {
        let c = self.sas.values().find_map(|s| s.child(id))?;
        Some(ChildSaSummary {
            name: c.config.name.clone(),
            inbound_spi: c.inbound_spi,
            outbound_spi: c.outbound_spi,
            ts_local: c.ts_local.clone(),
            ts_remote: c.ts_remote.clone(),
            mode: c.mode,
            suite: c.suite.to_string(),
        })
    }

    /// The SPIs and keys of an IKE SA, once IKE_SA_INIT is complete.
    ///
    /// A debugging aid for key logs (Wireshark's `ikev2_decryption_table`): anything
    /// holding these keys can read and forge the SA's IKE messages. Nothing in the library
    /// calls it or logs the keys.
    pub fn ike_sa_keys(
        &self,
        sa: IkeSaHandle,
    ) -> Option<(IkeSpi, IkeSpi, &crate::keys::IkeSaKeys)> {
        let s = self.sas.get(&sa)?;
        Some((s.spi_i, s.spi_r, s.keys.as_ref()?))
    }

    /// The peer address of an IKE SA.
    pub fn remote_addr(&self, sa: IkeSaHandle) -> Option<SocketAddr> {
        self.sas.get(&sa).map(|s| s.remote)
    }

    // ------------------------------------------------------------------ commands

    /// Initiates an IKE SA to `remote` from `local` with the first Child SA of `peer`
    /// (RFC 7296 §1.2). Progress is reported through events; the handle is valid at once.
    pub fn connect(
        &mut self,
        now: Instant,
        peer: Arc<PeerConfig>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<IkeSaHandle, CommandError> {
        self.check_peer_config(&peer)?;
        let handle = self.new_handle();
        let mut sa = IkeSa::new(handle, true, now, local, remote);
        sa.announced = true;
        sa.peer = Some(peer);
        sa.spi_i = self
            .fresh_ike_spi()
            .map_err(|e| CommandError::Crypto(e.to_string()))?;
        self.by_spi.insert(sa.spi_i, handle);
        if let Err(e) = self.start_init(now, &mut sa, None) {
            self.by_spi.remove(&sa.spi_i);
            return Err(e);
        }
        self.sas.insert(handle, sa);
        Ok(handle)
    }

    /// Deletes the IKE SA and all its Child SAs with an INFORMATIONAL Delete (§1.4.1).
    pub fn close(&mut self, now: Instant, sa: IkeSaHandle) -> Result<(), CommandError> {
        let s = self.sas.get(&sa).ok_or(CommandError::UnknownSa)?;
        if !s.is_established() {
            // Nothing authenticated to tell the peer; forget it.
            self.destroy(sa, CloseReason::LocallyClosed);
            return Ok(());
        }
        if s.state == IkeState::Deleting {
            // Already being deleted: closing twice sends one Delete.
            return Ok(());
        }
        self.with_sa(sa, |ep, s| {
            s.state = IkeState::Deleting;
            s.closing = Some(CloseReason::LocallyClosed);
            s.queued.clear();
            ep.queue_request(now, s, Request::DeleteIke);
        });
        Ok(())
    }

    /// Deletes one Child SA (§1.4.1), with any Child SA that is replacing it. The
    /// [`Event::ChildSaDeleted`] comes when the peer confirms, or when the IKE SA goes away.
    pub fn delete_child_sa(&mut self, now: Instant, child: ChildSaId) -> Result<(), CommandError> {
        let sa = self.established_owner_of(child)?;
        self.with_sa(sa, |ep, s| {
            // A rekey of ours in flight for it: its result is deleted too.
            if let Some(out) = s.outstanding.as_mut()
                && let Request::CreateChild(c) = &out.request
                && c.rekey == Some(child)
                && let Some(cs) = out.create.as_mut()
            {
                cs.abandoned = true;
            }
            s.queued
                .retain(|r| !matches!(r, Request::CreateChild(c) if c.rekey == Some(child)));
            s.delayed
                .retain(|(_, r)| !matches!(r, Request::CreateChild(c) if c.rekey == Some(child)));
            let mut ids = vec![child];
            let mut next = s.child(child).and_then(|c| c.successor);
            while let Some(n) = next.filter(|n| !ids.contains(n)) {
                ids.push(n);
                next = s.child(n).and_then(|c| c.successor);
            }
            ep.queue_request(now, s, Request::DeleteChildren(ids))
        });
        Ok(())
    }

    /// Creates an additional Child SA with `child` (its traffic selectors, proposals and
    /// mode) through CREATE_CHILD_SA (§1.3.1); a KE transform in its ESP proposals gives it
    /// its own Diffie-Hellman exchange (PFS). The outcome is an [`Event::ChildSaEstablished`]
    /// or an [`Event::ChildSaFailed`].
    pub fn create_child_sa(
        &mut self,
        now: Instant,
        sa: IkeSaHandle,
        child: crate::config::ChildConfig,
    ) -> Result<(), CommandError> {
        if self.sas.get(&sa).ok_or(CommandError::UnknownSa)?.state != IkeState::Established {
            return Err(CommandError::NotEstablished);
        }
        if child.esp_proposals.is_empty() {
            return Err(CommandError::InvalidConfig(format!(
                "child {:?}: no ESP proposals",
                child.name
            )));
        }
        let req = ChildRequest {
            ts_local: child.local_ts.clone(),
            ts_remote: child.remote_ts.clone(),
            mode: child.mode,
            config: child,
            rekey: None,
            group: None,
            ke_retries: 0,
        };
        self.with_sa(sa, |ep, s| {
            ep.queue_request(now, s, Request::CreateChild(Box::new(req)))
        });
        Ok(())
    }

    /// Rekeys a Child SA (§1.3.3, §2.8): a new one with the same (negotiated) traffic
    /// selectors, mode and configuration replaces it, make-before-break (see
    /// [`crate::event`] for the events). Asking again while a rekey is under way, or for a
    /// Child SA already replaced, is not an error and does nothing.
    pub fn rekey_child_sa(&mut self, now: Instant, child: ChildSaId) -> Result<(), CommandError> {
        let sa = self.established_owner_of(child)?;
        self.with_sa(sa, |ep, s| ep.start_child_rekey(now, s, child));
        Ok(())
    }

    /// Rekeys the IKE SA (§1.3.2, §2.8): a new IKE SA with new SPIs and keys takes over all
    /// its Child SAs, then the old one is deleted. [`Event::IkeSaRekeyed`] gives the new
    /// handle.
    pub fn rekey_ike_sa(&mut self, now: Instant, sa: IkeSaHandle) -> Result<(), CommandError> {
        if self.sas.get(&sa).ok_or(CommandError::UnknownSa)?.state != IkeState::Established {
            return Err(CommandError::NotEstablished);
        }
        self.with_sa(sa, |ep, s| {
            if !s.rekeying_ike() {
                ep.queue_request(now, s, Request::RekeyIke);
            }
        });
        Ok(())
    }

    /// Sends a liveness check (empty INFORMATIONAL, §1.4); an unanswered one closes the SA
    /// with [`CloseReason::DeadPeer`].
    pub fn probe(&mut self, now: Instant, sa: IkeSaHandle) -> Result<(), CommandError> {
        if self.sas.get(&sa).ok_or(CommandError::UnknownSa)?.state != IkeState::Established {
            return Err(CommandError::NotEstablished);
        }
        self.with_sa(sa, |ep, s| ep.queue_request(now, s, Request::Dpd));
        Ok(())
    }

    /// A lifetime event from the ESP engine about the SA with inbound or outbound `spi`:
    /// a soft limit (or a sequence number near exhaustion) rekeys the Child SA (§2.8), a
    /// hard limit deletes it (§1.4.1).
    pub fn handle_esp_event(
        &mut self,
        now: Instant,
        spi: Spi,
        hard: bool,
    ) -> Result<(), CommandError> {
        let found = self.sas.iter().find_map(|(h, s)| {
            s.children
                .iter()
                .find(|c| c.inbound_spi == spi || c.outbound_spi == spi)
                .map(|c| (*h, c.id))
        });
        let (h, child) = found.ok_or(CommandError::UnknownChildSa)?;
        if self
            .sas
            .get(&h)
            .is_none_or(|s| s.state != IkeState::Established)
        {
            return Err(CommandError::NotEstablished);
        }
        self.with_sa(h, |ep, s| {
            if hard {
                ep.expire_child(now, s, child);
            } else {
                ep.start_child_rekey(now, s, child);
            }
        });
        Ok(())
    }

    // ------------------------------------------------------------------ input

    /// Processes one received datagram.
    pub fn handle(&mut self, now: Instant, dgram: Datagram<'_>) {
        self.stats.received += 1;
        let bytes = if dgram.local.port() == IKE_PORT {
            dgram.payload
        } else {
            match dgram.payload.strip_prefix(&NON_ESP_MARKER[..]) {
                Some(rest) => rest,
                None => {
                    return self.drop_datagram(
                        DropReason::MissingNonEspMarker,
                        "no non-ESP marker on NAT-T port",
                    );
                }
            }
        };
        let header = match IkeHeader::decode(bytes) {
            Ok(h) => h,
            Err(e) => {
                if let DecodeErrorKind::HigherMajorVersion { .. } = e.kind {
                    self.answer_higher_version(dgram, bytes);
                    return self.drop_datagram(DropReason::UnsupportedVersion, &e.to_string());
                }
                return self.drop_datagram(DropReason::Malformed, &e.to_string());
            }
        };
        if header.exchange_type == ExchangeType::IKE_SA_INIT
            && !header.flags.response()
            && header.flags.initiator()
            && header.spi_r.is_zero()
        {
            return self.handle_init_request(now, dgram.local, dgram.remote, &header, bytes);
        }
        // The I flag tells whose SPI is ours (§3.1).
        let our_spi = if header.flags.initiator() {
            header.spi_r
        } else {
            header.spi_i
        };
        let Some(&handle) = self.by_spi.get(&our_spi) else {
            return self.drop_datagram(DropReason::UnknownSpi, "no IKE SA for SPI");
        };
        let mut sa = self.sas.remove(&handle).expect("index and table agree");
        if sa.initiator == header.flags.initiator() {
            self.sas.insert(handle, sa);
            return self.drop_datagram(DropReason::Unexpected, "I flag names us as the sender");
        }
        if header.flags.response() {
            self.handle_response(now, &mut sa, dgram, &header, bytes);
        } else {
            self.handle_request(now, &mut sa, dgram, &header, bytes);
        }
        self.put_back(sa);
    }

    fn handle_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        dgram: Datagram<'_>,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let Some(out) = sa.outstanding.as_ref() else {
            return self
                .drop_datagram(DropReason::OutOfWindow, "response with nothing outstanding");
        };
        if out.msg_id != header.message_id {
            return self.drop_datagram(DropReason::OutOfWindow, "response to another message ID");
        }
        let expected = match out.request {
            Request::Init => ExchangeType::IKE_SA_INIT,
            Request::Auth(_) => ExchangeType::IKE_AUTH,
            Request::Dpd | Request::DeleteIke | Request::DeleteChildren(_) => {
                ExchangeType::INFORMATIONAL
            }
            Request::CreateChild(_) | Request::RekeyIke => ExchangeType::CREATE_CHILD_SA,
        };
        if header.exchange_type != expected {
            return self.drop_datagram(DropReason::Unexpected, "response of another exchange type");
        }
        if expected == ExchangeType::IKE_SA_INIT {
            return self.handle_init_response(now, sa, dgram, header, bytes);
        }
        let Some(opened) = self.open(sa, bytes) else {
            return;
        };
        let out = sa.outstanding.take().expect("checked above");
        sa.next_msg_id = sa.next_msg_id.wrapping_add(1);
        sa.last_heard = now;
        self.note_address(sa, dgram);
        match out.request {
            Request::Auth(pending) => {
                self.handle_auth_response(now, sa, *pending, &opened.payloads)
            }
            Request::CreateChild(req) => match out.create {
                Some(cs) => self.handle_create_child_response(now, sa, *req, cs, &opened.payloads),
                None => debug!("CREATE_CHILD_SA without its state"),
            },
            Request::RekeyIke => match out.create {
                Some(cs) => self.handle_rekey_ike_response(now, sa, cs, &opened.payloads),
                None => debug!("CREATE_CHILD_SA without its state"),
            },
            req => self.handle_informational_response(now, sa, req, &opened.payloads),
        }
        self.send_queued(now, sa);
    }

    fn handle_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        dgram: Datagram<'_>,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        if header.message_id == sa.peer_msg_id.wrapping_sub(1) && sa.last_response.is_some() {
            // A retransmission of the request we answered last (§2.1): resend the answer,
            // without processing it again. Only an identical request counts.
            if sa.last_request == bytes {
                let resp = sa.last_response.clone().expect("checked");
                self.stats.responses_resent += 1;
                // §2.11: to where the retransmission came from (a NAT may have remapped).
                self.push_transmit(dgram.local, dgram.remote, resp);
            } else {
                self.drop_datagram(
                    DropReason::OutOfWindow,
                    "old message ID with different content",
                );
            }
            return;
        }
        if header.message_id != sa.peer_msg_id {
            return self.drop_datagram(DropReason::OutOfWindow, "request outside the window");
        }
        if header.exchange_type == ExchangeType::IKE_SA_INIT {
            return self.drop_datagram(DropReason::Unexpected, "IKE_SA_INIT on an existing SA");
        }
        let opened = match self.open(sa, bytes) {
            Some(o) => o,
            None => return,
        };
        sa.last_heard = now;
        sa.last_request = bytes.to_vec();
        self.note_address(sa, dgram);
        let live = sa.is_established() || sa.state == IkeState::Rekeyed;
        if live {
            self.activate_proven(sa, header.message_id);
        }
        if live && sa.adopt_from.is_some() && !Self::deletes_ike(&opened.payloads) {
            // The peer uses the IKE SA its rekey made: it is the survivor (§2.8.2).
            self.adopt(now, sa);
        }
        match header.exchange_type {
            ExchangeType::IKE_AUTH if sa.state == IkeState::InitAnswered && !sa.initiator => {
                self.handle_auth_request(now, sa, header, &opened.payloads)
            }
            ExchangeType::INFORMATIONAL if live => {
                self.handle_informational_request(now, sa, header, &opened.payloads)
            }
            ExchangeType::CREATE_CHILD_SA if live => {
                self.handle_create_child_request(now, sa, header, &opened.payloads)
            }
            _ => self.drop_datagram(DropReason::Unexpected, "request does not fit the SA state"),
        }
    }

    fn deletes_ike(payloads: &[Payload]) -> bool {
        payloads.iter().any(
            |p| matches!(p, Payload::Delete(d) if d.protocol == crate::message::ProtocolId::IKE),
        )
    }

    /// §2.5: a request with a higher major version is answered with an unauthenticated
    /// INVALID_MAJOR_VERSION notify naming version 2 (the header is read from the raw
    /// octets, which the version check has shown to be at least 28 long).
    fn answer_higher_version(&mut self, dgram: Datagram<'_>, bytes: &[u8]) {
        let (Some(spis), Some(&exchange), Some(&flags), Some(id)) = (
            bytes.get(..16),
            bytes.get(18),
            bytes.get(19),
            bytes.get(20..24),
        ) else {
            return;
        };
        if flags & crate::message::Flags::RESPONSE != 0 {
            return;
        }
        let spi_i = IkeSpi(spis[..8].try_into().expect("8 octets"));
        let spi_r = IkeSpi(spis[8..].try_into().expect("8 octets"));
        let msg_id = u32::from_be_bytes(id.try_into().expect("4 octets"));
        let initiator = flags & crate::message::Flags::INITIATOR == 0;
        let header = IkeHeader::new(
            spi_i,
            spi_r,
            ExchangeType(exchange),
            crate::message::Flags::new(initiator, true),
            msg_id,
        );
        let notify = crate::message::NotifyPayload::new(
            crate::message::NotifyType::INVALID_MAJOR_VERSION,
            vec![0x20],
        );
        if let Ok(b) = crate::message::Message::new(header, vec![Payload::Notify(notify)])
            .and_then(|m| m.to_bytes())
        {
            self.push_transmit(dgram.local, dgram.remote, b);
        }
    }

    /// Decrypts and authenticates; drops (and returns `None`) on failure.
    fn open(&mut self, sa: &IkeSa<P>, bytes: &[u8]) -> Option<crate::message::OpenedMessage> {
        let Some(prot) = sa.protection.as_ref() else {
            self.drop_datagram(
                DropReason::Unexpected,
                "encrypted message before keys exist",
            );
            return None;
        };
        match prot.inbound.open(bytes) {
            Ok(o) => Some(o),
            Err(SkError::AuthenticationFailed) => {
                self.drop_datagram(
                    DropReason::IntegrityFailed,
                    "SK payload failed its integrity check",
                );
                None
            }
            Err(e) => {
                self.drop_datagram(DropReason::Malformed, &e.to_string());
                None
            }
        }
    }

    /// Follows the peer to a new address or port after an authenticated message
    /// (RFC 7296 §2.23: only when a NAT is involved).
    fn note_address(&mut self, sa: &mut IkeSa<P>, dgram: Datagram<'_>) {
        if dgram.local != sa.local {
            sa.local = dgram.local;
        }
        // Only a peer behind a NAT may move (its mapping can change); a host behind a NAT
        // itself does not follow, so one rewritten packet cannot redirect the SA (§2.23).
        if dgram.remote != sa.remote && sa.nat.remote_behind_nat {
            sa.remote = dgram.remote;
            if sa.is_established() {
                self.events.push_back(Event::PeerAddressChanged {
                    sa: sa.handle,
                    remote: dgram.remote,
                });
            }
        }
    }

    // ------------------------------------------------------------------ timers

    /// The next instant at which [`Endpoint::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.cookies.next_rotation();
        if let Some((t, _)) = self.inbound_expiries.front() {
            next = Some(next.map_or(*t, |n: Instant| n.min(*t)));
        }
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for sa in self.sas.values() {
            consider(sa.outstanding.as_ref().map(|o| o.retransmit_at));
            consider(sa.half_open_deadline);
            consider(sa.next_keepalive);
            consider(self.dpd_due(sa));
            consider(sa.forget_at);
            if sa.state == IkeState::Established {
                consider(sa.rekey_at);
                for c in &sa.children {
                    consider(c.expire_at);
                    consider(c.rekey_at);
                }
            }
            for (t, _) in &sa.delayed {
                consider(Some(*t));
            }
        }
        next
    }

    fn dpd_due(&self, sa: &IkeSa<P>) -> Option<Instant> {
        let delay = sa.peer.as_ref()?.dpd_delay?;
        (sa.state == IkeState::Established && sa.outstanding.is_none() && sa.queued.is_empty())
            .then(|| sa.last_heard + delay)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.cookies.handle_timeout(&*self.provider, now);
        while self
            .inbound_expiries
            .front()
            .is_some_and(|(t, _)| *t <= now)
        {
            if let Some((_, e)) = self.inbound_expiries.pop_front() {
                self.events.push_back(e);
            }
        }
        let handles: Vec<IkeSaHandle> = self.sas.keys().copied().collect();
        for h in handles {
            let Some(mut sa) = self.sas.remove(&h) else {
                continue;
            };
            if sa.half_open_deadline.is_some_and(|t| t <= now) && !sa.is_established() {
                debug!(sa = h.0, "half-open IKE SA timed out");
                self.retire(&sa, CloseReason::HalfOpenTimeout);
                continue;
            }
            if sa.forget_at.is_some_and(|t| t <= now) {
                debug!(sa = h.0, "replaced IKE SA forgotten without a Delete");
                sa.children.clear();
                sa.announced = false;
                self.retire(&sa, CloseReason::Rekeyed);
                continue;
            }
            if let Some(out) = sa.outstanding.as_mut().filter(|o| o.retransmit_at <= now) {
                if out.sends > self.config.retransmit.max_retransmits {
                    let reason = match out.request {
                        Request::Dpd => CloseReason::DeadPeer,
                        // We were deleting it anyway; the peer has likely deleted it too and
                        // lost only its answer (it cannot answer without the SA).
                        Request::DeleteIke => {
                            sa.closing.take().unwrap_or(CloseReason::LocallyClosed)
                        }
                        _ => CloseReason::RetransmitTimeout,
                    };
                    debug!(sa = h.0, ?reason, "peer did not answer");
                    self.retire(&sa, reason);
                    continue;
                }
                out.retransmit_at = now + self.config.retransmit.timeout(out.sends);
                out.sends += 1;
                let d = out.datagram.clone();
                self.stats.retransmits += 1;
                self.push_transmit(sa.local, sa.remote, d);
            }
            if self.dpd_due(&sa).is_some_and(|t| t <= now) {
                self.queue_request(now, &mut sa, Request::Dpd);
            }
            if sa.next_keepalive.is_some_and(|t| t <= now) {
                self.transmits.push_back((
                    sa.local,
                    sa.remote,
                    vec![ipsec_core::natt::NAT_KEEPALIVE],
                ));
                sa.next_keepalive = Some(now + self.config.nat_keepalive);
            }
            self.child_timers(now, &mut sa);
            self.put_back(sa);
        }
    }

    /// Lifetimes of the Child SAs and the IKE SA (§2.8), and delayed retries (§2.25).
    fn child_timers(&mut self, now: Instant, sa: &mut IkeSa<P>) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut sa.delayed)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        sa.delayed = later;
        if sa.state != IkeState::Established {
            return;
        }
        for (_, r) in due {
            self.queue_request(now, sa, r);
        }
        let expired: Vec<ChildSaId> = sa
            .children
            .iter()
            .filter(|c| c.expire_at.is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in expired {
            self.expire_child(now, sa, id);
        }
        let soft: Vec<ChildSaId> = sa
            .children
            .iter()
            .filter(|c| c.rekey_at.is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in soft {
            if let Some(c) = sa.child_mut(id) {
                c.rekey_at = None;
            }
            self.start_child_rekey(now, sa, id);
        }
        if sa.expire_at.is_some_and(|t| t <= now) {
            sa.expire_at = None;
            sa.rekey_at = None;
            info!(sa = sa.handle.0, "IKE SA hard lifetime: deleting it");
            sa.state = IkeState::Deleting;
            sa.closing = Some(CloseReason::Expired);
            sa.queued.clear();
            sa.delayed.clear();
            self.queue_request(now, sa, Request::DeleteIke);
            return;
        }
        if sa.rekey_at.is_some_and(|t| t <= now) {
            sa.rekey_at = None;
            if !sa.rekeying_ike() {
                self.queue_request(now, sa, Request::RekeyIke);
            }
        }
    }

    /// Arms the soft and hard lifetimes of an IKE SA that was just established or made by a
    /// rekey (§2.8).
    pub(crate) fn arm_ike_lifetimes(&self, now: Instant, sa: &mut IkeSa<P>) {
        let (soft, hard) = sa
            .peer
            .as_ref()
            .map_or((None, None), |p| (p.rekey_time, p.life_time));
        sa.rekey_at = soft.map(|d| now + self.jittered(d));
        sa.expire_at = hard.map(|d| now + d);
        sa.rekey_group = None;
        sa.rekey_ke_retries = 0;
    }

    /// After a failed rekey: when to try again, unless the hard lifetime comes first.
    pub(crate) fn rekey_retry_at(
        &self,
        now: Instant,
        expire_at: Option<Instant>,
    ) -> Option<Instant> {
        let at = now + self.jittered(self.config.rekey_retry);
        expire_at.is_none_or(|e| at < e).then_some(at)
    }

    /// Hard lifetime of a Child SA: delete it (§1.4.1).
    pub(crate) fn expire_child(&mut self, now: Instant, sa: &mut IkeSa<P>, id: ChildSaId) {
        let Some(c) = sa.child_mut(id) else { return };
        c.expire_at = None;
        c.rekey_at = None;
        if !sa.deleting_child(id) {
            debug!(sa = sa.handle.0, child = id.0, "Child SA hard lifetime");
            self.queue_request(now, sa, Request::DeleteChildren(vec![id]));
        }
    }

    /// Queues a rekey of a Child SA unless it is moot: already replaced or being replaced,
    /// being deleted, lost a collision, or not in use yet.
    pub(crate) fn start_child_rekey(&mut self, now: Instant, sa: &mut IkeSa<P>, id: ChildSaId) {
        let Some(c) = sa.child(id) else { return };
        if c.successor.is_some()
            || c.redundant
            || !c.active()
            || sa.deleting_child(id)
            || sa.rekeying_child(id)
        {
            return;
        }
        let req = ChildRequest {
            config: c.config.clone(),
            ts_local: c.ts_local.clone(),
            ts_remote: c.ts_remote.clone(),
            mode: c.mode,
            rekey: Some(id),
            group: None,
            ke_retries: 0,
        };
        debug!(sa = sa.handle.0, child = id.0, "rekeying Child SA");
        self.queue_request(now, sa, Request::CreateChild(Box::new(req)));
    }

    /// `d` less a random 0–10 % (§2.8: so that both peers rarely rekey at once).
    pub(crate) fn jittered(&self, d: std::time::Duration) -> std::time::Duration {
        let mut r = [0u8; 2];
        let per_mille = match self.provider.fill_random(&mut r) {
            Ok(()) => u32::from(u16::from_be_bytes(r) % 101),
            Err(_) => 50,
        };
        d - d / 1000 * per_mille
    }

    /// The delay before retrying after TEMPORARY_FAILURE (§2.25: not at once).
    pub(crate) fn retry_delay(&self) -> std::time::Duration {
        let base = self.config.retry_delay;
        let mut r = [0u8; 1];
        let pct = match self.provider.fill_random(&mut r) {
            Ok(()) => u32::from(r[0] % 101),
            Err(_) => 50,
        };
        base + base / 100 * pct
    }

    // ------------------------------------------------------------------ output

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Writes the next datagram into `buf` (cleared first) and says where to send it.
    pub fn poll_transmit(&mut self, _now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (local, remote, bytes) = self.transmits.pop_front()?;
        buf.clear();
        buf.extend_from_slice(&bytes);
        self.stats.transmitted += 1;
        Some(Transmit { local, remote })
    }

    // ------------------------------------------------------------------ helpers

    pub(crate) fn new_handle(&mut self) -> IkeSaHandle {
        let h = IkeSaHandle(self.next_handle);
        self.next_handle += 1;
        h
    }

    pub(crate) fn new_child_id(&mut self) -> ChildSaId {
        let c = ChildSaId(self.next_child);
        self.next_child += 1;
        c
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Queues an IKE message, adding the non-ESP marker on the NAT-T port.
    pub(crate) fn push_transmit(&mut self, local: SocketAddr, remote: SocketAddr, msg: Vec<u8>) {
        let bytes = if local.port() == IKE_PORT {
            msg
        } else {
            let mut v = Vec::with_capacity(msg.len() + 4);
            v.extend_from_slice(&NON_ESP_MARKER);
            v.extend_from_slice(&msg);
            v
        };
        self.transmits.push_back((local, remote, bytes));
    }

    pub(crate) fn drop_datagram(&mut self, reason: DropReason, why: &str) {
        debug!(?reason, why, "dropped IKE datagram");
        *self.stats.dropped.entry(reason).or_insert(0) += 1;
    }

    /// A random, nonzero IKE SPI not in use here.
    pub(crate) fn fresh_ike_spi(&self) -> Result<IkeSpi, ipsec_core::CryptoError> {
        loop {
            let mut s = [0u8; 8];
            self.provider.fill_random(&mut s)?;
            let spi = IkeSpi(s);
            if !spi.is_zero() && !self.by_spi.contains_key(&spi) {
                return Ok(spi);
            }
        }
    }

    /// A random inbound ESP SPI ≥ 256, unique among our Child SAs.
    pub(crate) fn fresh_child_spi(&self) -> Result<Spi, ipsec_core::CryptoError> {
        loop {
            let mut s = [0u8; 4];
            self.provider.fill_random(&mut s)?;
            let spi = Spi::from_bytes(s);
            let used = self
                .sas
                .values()
                .any(|sa| sa.children.iter().any(|c| c.inbound_spi == spi));
            if spi.is_assignable() && !used {
                return Ok(spi);
            }
        }
    }

    pub(crate) fn random_bytes(&self, n: usize) -> Result<Vec<u8>, ipsec_core::CryptoError> {
        let mut v = vec![0u8; n];
        self.provider.fill_random(&mut v)?;
        Ok(v)
    }

    fn check_peer_config(&self, peer: &PeerConfig) -> Result<(), CommandError> {
        if peer.psk.len() < self.config.min_psk_len {
            return Err(CommandError::InvalidConfig(format!(
                "connection {:?}: pre-shared key is {} octets, at least {} required",
                peer.name,
                peer.psk.len(),
                self.config.min_psk_len
            )));
        }
        if peer.ike_proposals.is_empty() {
            return Err(CommandError::InvalidConfig(format!(
                "connection {:?}: no IKE proposals",
                peer.name
            )));
        }
        Ok(())
    }

    /// The IKE SA of `child`, which must be established (commands on Child SAs).
    fn established_owner_of(&self, child: ChildSaId) -> Result<IkeSaHandle, CommandError> {
        let sa = self.owner_of(child).ok_or(CommandError::UnknownChildSa)?;
        match self.sas.get(&sa) {
            Some(s) if s.state == IkeState::Established => Ok(sa),
            _ => Err(CommandError::NotEstablished),
        }
    }

    pub(crate) fn owner_of(&self, child: ChildSaId) -> Option<IkeSaHandle> {
        self.sas
            .iter()
            .find(|(_, s)| s.child(child).is_some())
            .map(|(h, _)| *h)
    }

    /// Runs `f` with the SA taken out of the table, then puts it back.
    pub(crate) fn with_sa(&mut self, h: IkeSaHandle, f: impl FnOnce(&mut Self, &mut IkeSa<P>)) {
        if let Some(mut sa) = self.sas.remove(&h) {
            f(self, &mut sa);
            self.put_back(sa);
        }
    }

    /// Reinserts an SA unless it has been destroyed meanwhile (the SPI index is the
    /// record of life).
    pub(crate) fn put_back(&mut self, sa: IkeSa<P>) {
        if self.by_spi.get(&sa.local_spi()) == Some(&sa.handle) {
            self.sas.insert(sa.handle, sa);
        }
    }

    /// Sends a request now if the window is free, else queues it (§2.3, window size 1).
    pub(crate) fn queue_request(&mut self, now: Instant, sa: &mut IkeSa<P>, request: Request) {
        sa.queued.push_back(request);
        self.send_queued(now, sa);
    }

    pub(crate) fn send_queued(&mut self, now: Instant, sa: &mut IkeSa<P>) {
        while sa.outstanding.is_none() {
            if !matches!(
                sa.state,
                IkeState::Established | IkeState::Deleting | IkeState::Rekeyed
            ) {
                return;
            }
            let Some(req) = sa.queued.pop_front() else {
                return;
            };
            let (exchange, payloads, create) = match &req {
                Request::CreateChild(c) => match self.create_child_payloads(sa, c) {
                    Some((p, cs)) => (ExchangeType::CREATE_CHILD_SA, p, Some(cs)),
                    None => continue,
                },
                Request::RekeyIke => match self.rekey_ike_payloads(sa) {
                    Some((p, cs)) => (ExchangeType::CREATE_CHILD_SA, p, Some(cs)),
                    None => continue,
                },
                _ => match self.informational_payloads(sa, &req) {
                    Some(p) => (ExchangeType::INFORMATIONAL, p, None),
                    None => continue,
                },
            };
            let msg_id = sa.next_msg_id;
            match sa.seal(exchange, false, msg_id, &payloads) {
                Ok(bytes) => self.send_request(now, sa, req, bytes, create),
                Err(e) => debug!(error = %e, "cannot protect request"),
            }
        }
    }

    /// Records and sends a request datagram (§2.1).
    pub(crate) fn send_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        request: Request,
        bytes: Vec<u8>,
        create: Option<CreateState>,
    ) {
        sa.outstanding = Some(Outstanding {
            msg_id: sa.next_msg_id,
            request,
            datagram: bytes.clone(),
            sends: 1,
            retransmit_at: now + self.config.retransmit.timeout(0),
            create,
        });
        self.push_transmit(sa.local, sa.remote, bytes);
    }

    /// Encrypts and sends a response to the peer's request, caching it for retransmissions.
    pub(crate) fn respond(
        &mut self,
        sa: &mut IkeSa<P>,
        request: &IkeHeader,
        payloads: Vec<Payload>,
    ) {
        match sa.seal(request.exchange_type, true, request.message_id, &payloads) {
            Ok(bytes) => {
                sa.peer_msg_id = request.message_id.wrapping_add(1);
                sa.last_response = Some(bytes.clone());
                self.push_transmit(sa.local, sa.remote, bytes);
            }
            Err(e) => debug!(error = %e, "cannot protect response"),
        }
    }

    /// Removes an SA that is in the table, see [`Endpoint::retire`].
    pub(crate) fn destroy(&mut self, h: IkeSaHandle, reason: CloseReason) {
        if let Some(sa) = self.sas.remove(&h) {
            self.retire(&sa, reason);
        }
    }

    /// Enters a responder's half-open SA into the half-open table (O(1)).
    pub(crate) fn add_half_open(&mut self, sa: &mut IkeSa<P>, key: (IkeSpi, SocketAddr)) {
        self.half_open.insert(key, sa.handle);
        *self.half_open_by_ip.entry(key.1.ip()).or_default() += 1;
        sa.half_open_key = Some(key);
    }

    /// Removes a half-open table entry (O(1)).
    pub(crate) fn forget_half_open(&mut self, key: Option<(IkeSpi, SocketAddr)>) {
        let Some(key) = key else { return };
        if self.half_open.remove(&key).is_none() {
            return;
        }
        if let std::collections::hash_map::Entry::Occupied(mut e) =
            self.half_open_by_ip.entry(key.1.ip())
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// Ends an SA: unindexes it (so [`Endpoint::put_back`] will not reinsert it), reports
    /// its Child SAs deleted and the SA closed (if the caller ever saw it).
    pub(crate) fn retire(&mut self, sa: &IkeSa<P>, reason: CloseReason) {
        let h = sa.handle;
        if self.by_spi.get(&sa.local_spi()) == Some(&h) {
            self.by_spi.remove(&sa.local_spi());
        }
        self.forget_half_open(sa.half_open_key);
        for c in sa.children.iter().filter(|c| c.reported) {
            // The IKE SA is gone: so is everything it negotiated, at once.
            self.events.push_back(Event::ChildSaDeleted {
                ike_sa: h,
                id: c.id,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
                keep_inbound: false,
            });
        }
        if sa.announced {
            self.events.push_back(Event::IkeSaClosed { sa: h, reason });
        }
    }
}

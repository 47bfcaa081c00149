//! What the endpoint tells its caller: events, close reasons, handles.
//!
//! Events are plain data. A [`Event::ChildSaEstablished`] carries both directions'
//! [`EspSaParams`]: install the inbound one into the ESP engine before sending anything that
//! the peer could answer (the run loop drains events before transmits for that reason).
//!
//! # Rekeying (RFC 7296 §2.8)
//!
//! A rekeyed Child SA is make-before-break; the events say exactly what to install, use and
//! remove, in this order:
//!
//! * Rekey **initiator**: [`Event::ChildSaEstablished`] with `replaces: Some(old)` — install
//!   both new SAs and send on the new outbound SA from now on (always send on the newest
//!   Child SA of a name). The old Child SA is then deleted with an INFORMATIONAL exchange,
//!   and [`Event::ChildSaDeleted`] for it comes when the peer has confirmed: until then the
//!   old inbound SA keeps accepting what the peer still sends on it.
//! * Rekey **responder**: [`Event::ChildSaInboundReady`] first — install the new inbound
//!   SA only, and keep sending on the old Child SA: the peer may not have our response yet.
//!   [`Event::ChildSaEstablished`] (same id, `replaces: Some(old)`) follows when the peer
//!   deleted the old Child SA, which proves it installed the new one; then
//!   [`Event::ChildSaDeleted`] for the old one.
//! * Either way, the [`Event::ChildSaDeleted`] of a Child SA replaced by a rekey has
//!   `keep_inbound`: remove its outbound ESP SA, and its inbound one only at the
//!   [`Event::ChildSaInboundExpired`] that follows a few seconds later (packets the peer
//!   sent just before switching may arrive after the Delete).
//! * A Child SA that loses a rekey collision (§2.8.1) is either never reported (we made
//!   it), or reported by [`Event::ChildSaInboundReady`] and then [`Event::ChildSaDeleted`].
//!
//! A rekeyed IKE SA gets a new [`IkeSaHandle`]: [`Event::IkeSaRekeyed`] says so, and its
//! Child SAs move to the new handle unchanged (no deleted / established events for them).
//! The old handle is never reported closed.

use std::net::SocketAddr;

use ipsec_core::{EspSaParams, Mode, Spi, TrafficSelector};

use crate::config::Identity;
use crate::nat::NatStatus;

/// Handle of an IKE SA inside an [`crate::Endpoint`]. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaHandle(pub u64);

/// Identifier of a Child SA (pair of ESP SAs) inside an [`crate::Endpoint`]. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildSaId(pub u64);

/// A negotiated Child SA, as handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaInfo {
    /// The Child SA.
    pub id: ChildSaId,
    /// The IKE SA it belongs to.
    pub ike_sa: IkeSaHandle,
    /// Name of the child configuration it was made from.
    pub name: String,
    /// Install into the ESP engine for receiving (our SPI).
    pub inbound: EspSaParams,
    /// Install into the ESP engine for sending (the peer's SPI).
    pub outbound: EspSaParams,
    /// Negotiated (narrowed) local traffic selectors.
    pub ts_local: Vec<TrafficSelector>,
    /// Negotiated (narrowed) remote traffic selectors.
    pub ts_remote: Vec<TrafficSelector>,
    /// Tunnel or transport.
    pub mode: Mode,
    /// The negotiated ESP suite in strongSwan notation, for logs.
    pub suite: String,
    /// The Child SA this one replaces (rekey), if any.
    pub replaces: Option<ChildSaId>,
}

/// Why an IKE SA ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// We closed it ([`crate::Endpoint::close`]).
    LocallyClosed,
    /// The peer deleted it.
    DeletedByPeer,
    /// The peer stopped answering retransmissions of one of our requests.
    RetransmitTimeout,
    /// The peer stopped answering liveness checks.
    DeadPeer,
    /// The peer did not prove the pre-shared key, or refused ours.
    AuthenticationFailed,
    /// No proposal acceptable; the text says which transform type had no overlap.
    NoProposalChosen(String),
    /// The peer answered with an error notify (RFC 7296 §3.10.1 number and name).
    PeerError(u16, String),
    /// A half-open SA (responder side) never completed IKE_AUTH.
    HalfOpenTimeout,
    /// A protocol violation we could not recover from.
    Protocol(String),
    /// The IKE SA was replaced by a rekeyed one.
    Rekeyed,
    /// The IKE SA reached its hard lifetime ([`crate::PeerConfig::life_time`])
    /// without a successful rekey, and was deleted.
    Expired,
    /// The peer re-authenticated with INITIAL_CONTACT (RFC 7296 §2.4): this older SA is
    /// stale.
    InitialContact,
}

/// Something the caller must know or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// IKE_AUTH completed: the IKE SA is authenticated.
    IkeSaEstablished {
        /// The IKE SA.
        sa: IkeSaHandle,
        /// Name of the peer configuration.
        peer: String,
        /// Our identity.
        local_id: Identity,
        /// The authenticated peer identity.
        remote_id: Identity,
        /// Our address and port (after any float to 4500).
        local: SocketAddr,
        /// The peer's address and port.
        remote: SocketAddr,
        /// NAT detection result.
        nat: NatStatus,
        /// The negotiated IKE suite in strongSwan notation.
        suite: String,
    },
    /// A Child SA is ready: install `inbound` and `outbound` into the ESP engine.
    ChildSaEstablished(Box<ChildSaInfo>),
    /// Rekey responder (RFC 7296 §2.8): the inbound ESP SA of the Child SA `id` that
    /// replaces `replaces`. Install it now (the peer sends on it as soon as it has our
    /// response) but keep sending on the old Child SA; [`Event::ChildSaEstablished`] for the
    /// same `id` (whose `inbound` is this SA, already installed) says when to send on the
    /// new one, or [`Event::ChildSaDeleted`] says it was abandoned.
    ChildSaInboundReady {
        /// The IKE SA.
        ike_sa: IkeSaHandle,
        /// The new Child SA.
        id: ChildSaId,
        /// Name of the child configuration.
        name: String,
        /// Install into the ESP engine for receiving (our SPI).
        inbound: Box<EspSaParams>,
        /// The Child SA it replaces.
        replaces: ChildSaId,
    },
    /// A Child SA is gone: remove both ESP SAs (only the inbound one after a
    /// [`Event::ChildSaInboundReady`] not followed by [`Event::ChildSaEstablished`]) —
    /// except, with `keep_inbound`, the inbound one, which goes at
    /// [`Event::ChildSaInboundExpired`].
    ChildSaDeleted {
        /// The IKE SA.
        ike_sa: IkeSaHandle,
        /// The Child SA.
        id: ChildSaId,
        /// Our SPI (the inbound ESP SA).
        inbound_spi: Spi,
        /// The peer's SPI (the outbound ESP SA).
        outbound_spi: Spi,
        /// The Child SA was replaced by a rekey: keep its inbound ESP SA for
        /// [`crate::EndpointConfig::rekeyed_inbound_grace`], for packets still in flight.
        keep_inbound: bool,
    },
    /// The grace period of a replaced Child SA's inbound ESP SA is over: remove it.
    ChildSaInboundExpired {
        /// The IKE SA it belonged to (it may be gone or rekeyed since).
        ike_sa: IkeSaHandle,
        /// The Child SA.
        id: ChildSaId,
        /// Our SPI (the inbound ESP SA).
        inbound_spi: Spi,
    },
    /// Creating a Child SA failed (the IKE SA stays up).
    ChildSaFailed {
        /// The IKE SA.
        ike_sa: IkeSaHandle,
        /// Name of the child configuration.
        name: String,
        /// Why.
        reason: String,
    },
    /// The IKE SA is gone; every Child SA of it was reported deleted before this event.
    IkeSaClosed {
        /// The IKE SA.
        sa: IkeSaHandle,
        /// Why.
        reason: CloseReason,
    },
    /// A peer's negotiation failed before any IKE SA was reported for it (responder side):
    /// no acceptable proposal, authentication failure.
    NegotiationFailed {
        /// The peer's address.
        remote: SocketAddr,
        /// What went wrong, with the details strongSwan users look for.
        reason: String,
    },
    /// The IKE SA was rekeyed (RFC 7296 §1.3.2, §2.8): `new` replaces `old`, with new SPIs
    /// and keys. Every Child SA of `old` now belongs to `new`, unchanged; `old` is gone
    /// for the caller (no [`Event::IkeSaClosed`] follows for it).
    IkeSaRekeyed {
        /// The replaced IKE SA.
        old: IkeSaHandle,
        /// The new IKE SA.
        new: IkeSaHandle,
    },
    /// The peer's address or port changed (NAT mapping change, RFC 7296 §2.23).
    PeerAddressChanged {
        /// The IKE SA.
        sa: IkeSaHandle,
        /// The new remote address; update ESP outbound encapsulation accordingly.
        remote: SocketAddr,
    },
}

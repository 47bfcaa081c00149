//! The seam where the IKEv2 control plane (`ike::Endpoint`) plugs into the run loop.
//!
//! The run loop in [`crate::peer`] is generic over [`ControlPlane`], whose methods mirror
//! the sans-IO endpoint API described in ARCHITECTURE.md (`handle`, `poll_transmit`,
//! `poll_event`, `poll_timeout`, `handle_timeout`, `handle_esp_event`, `connect`, `close`).
//!
//! Two implementations exist: [`crate::ike_endpoint::Ike`] forwards to `ike::Endpoint` and
//! maps its events to [`IkeEvent`]; [`NoIke`] (used when the configuration has no
//! connections, i.e. static keys only) logs and drops IKE datagrams and never produces
//! events. `bin/ipsec-peer.rs` picks one of them; nothing else in the run loop knows IKE.

use std::net::SocketAddr;
use std::time::Instant;

use ipsec_core::{EspSaParams, Spi};

use crate::config::Config;
use crate::esp_glue::EspEvent;
use crate::keylog::IkeSaKeys;
use crate::spd::PacketSelector;

/// A received IKE datagram: the UDP payload exactly as received (on NAT-T sockets, port
/// 4500, the non-ESP marker followed by the IKE message; RFC 3948 §2.2).
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Our address and port it arrived on.
    pub local: SocketAddr,
    /// The sender.
    pub remote: SocketAddr,
    /// The IKE message.
    pub payload: &'a [u8],
}

/// A datagram to send: the bytes are in the buffer given to
/// [`ControlPlane::poll_transmit`] (with the non-ESP marker when `local` is port 4500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from.
    pub local: SocketAddr,
    /// The destination.
    pub remote: SocketAddr,
}

/// What the control plane tells the run loop.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum IkeEvent {
    /// An IKE SA is up; `keys` feeds the key log.
    IkeSaEstablished {
        /// Connection name.
        name: String,
        /// Keys for the key log (only when the key log is on).
        keys: Option<IkeSaKeys>,
    },
    /// An IKE SA was replaced by a rekeyed one (its Child SAs are unchanged); `keys` (of the
    /// new one) feeds the key log.
    IkeSaRekeyed {
        /// Connection name.
        name: String,
        /// Keys for the key log (only when the key log is on).
        keys: Option<IkeSaKeys>,
    },
    /// A Child SA is up: install both directions (inbound first) and route by its selectors.
    ChildSaEstablished {
        /// Child name.
        name: String,
        /// Our inbound SA.
        inbound: Box<EspSaParams>,
        /// Our outbound SA.
        outbound: Box<EspSaParams>,
    },
    /// Rekey responder: the inbound SA of a Child SA that replaces another; install it now,
    /// keep sending on the old Child SA until `ChildSaEstablished` for the new one.
    ChildSaInboundReady {
        /// Child name.
        name: String,
        /// Our new inbound SA.
        inbound: Box<EspSaParams>,
    },
    /// ESP SAs to remove: both directions of a deleted Child SA, only the outbound one of a
    /// Child SA replaced by a rekey (its inbound one goes a few seconds later, for late
    /// packets), or that inbound one then.
    ChildSaDeleted {
        /// Our inbound SPI, if that SA goes now.
        inbound_spi: Option<Spi>,
        /// The outbound SPI, if that SA goes now.
        outbound_spi: Option<Spi>,
    },
    /// An IKE SA is gone (its Child SAs have been reported deleted before).
    IkeSaClosed {
        /// Connection name.
        name: String,
        /// Why, for the log.
        reason: String,
    },
}

/// The control plane as the run loop drives it. After every call that takes `now` the run
/// loop drains [`ControlPlane::poll_event`] (installing keys) before
/// [`ControlPlane::poll_transmit`], then re-reads [`ControlPlane::poll_timeout`].
pub trait ControlPlane {
    /// Loads the connections; initiates those with `start_action = "start"`.
    fn start(&mut self, now: Instant, config: &Config);
    /// An IKE datagram arrived.
    fn handle(&mut self, now: Instant, dgram: Datagram<'_>);
    /// The next datagram to send, written into `buf` (cleared first).
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit>;
    /// The next event.
    fn poll_event(&mut self) -> Option<IkeEvent>;
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// A deadline passed.
    fn handle_timeout(&mut self, now: Instant);
    /// A lifetime event from the ESP engine (soft → rekey, hard → delete).
    fn handle_esp_event(&mut self, now: Instant, ev: &EspEvent);
    /// A packet from the TUN device matched no Child SA (`start_action = "trap"`).
    fn acquire(&mut self, now: Instant, packet: &PacketSelector);
    /// Shutting down: send Deletes for every IKE SA.
    fn close_all(&mut self, now: Instant);
}

/// The placeholder control plane: no IKE yet. Received IKE messages are logged and dropped.
#[derive(Debug, Default)]
pub struct NoIke {
    /// IKE datagrams received and dropped.
    pub dropped: u64,
}

impl ControlPlane for NoIke {
    fn start(&mut self, _now: Instant, config: &Config) {
        for name in config.connections.keys() {
            tracing::warn!(
                connection = %name,
                "IKE is not available in this build; connection loaded but not started"
            );
        }
    }

    fn handle(&mut self, _now: Instant, d: Datagram<'_>) {
        self.dropped += 1;
        tracing::info!(
            local = %d.local,
            remote = %d.remote,
            len = d.payload.len(),
            "IKE message dropped (no IKE endpoint yet)"
        );
    }

    fn poll_transmit(&mut self, _now: Instant, _buf: &mut Vec<u8>) -> Option<Transmit> {
        None
    }

    fn poll_event(&mut self) -> Option<IkeEvent> {
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn handle_esp_event(&mut self, _now: Instant, ev: &EspEvent) {
        tracing::info!(event = ?ev, "ESP lifetime event (no IKE to rekey)");
    }

    fn acquire(&mut self, _now: Instant, _packet: &PacketSelector) {}

    fn close_all(&mut self, _now: Instant) {}
}

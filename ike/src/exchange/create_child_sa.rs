//! CREATE_CHILD_SA (RFC 7296 §1.3): additional Child SAs (§1.3.1, with PFS when the ESP
//! proposals carry a KE transform), Child SA rekeying (§1.3.3, §2.8), IKE SA rekeying
//! (§1.3.2, §2.18), and the collisions of §2.8.1, §2.8.2 and §2.25.
//!
//! # Child SA rekey, make-before-break (§2.8)
//!
//! The initiator names the replaced Child SA by its inbound SPI in REKEY_SA (§1.3.3) and
//! proposes its negotiated selectors and mode again. The responder installs the new
//! inbound SA before answering and keeps sending on the old Child SA; the initiator, on the
//! response, installs both and sends on the new one, then deletes the old one. The
//! responder starts sending on the new SA when that Delete arrives (it proves the initiator
//! has the new inbound SA), which is also when the old SA goes.
//!
//! # Collisions
//!
//! * Both peers rekey the same Child SA (§2.8.1): each answers the other's request as
//!   usual; when our own exchange completes, of the four nonces the lowest (octet by octet,
//!   a shorter prefix being lower) marks the redundant SA, which its initiator deletes at
//!   once (we never report ours); the initiator of the surviving one deletes the old SA.
//! * Both peers rekey the IKE SA (§2.8.2): the same rule; the Child SAs move to the
//!   surviving IKE SA, the redundant one is deleted by its initiator. Should the peer use
//!   the new IKE SA we answered for before we decide, it is the survivor.
//! * §2.25.1/§2.25.2: a rekey of a Child SA we are deleting (or that another rekey already
//!   replaced) is answered TEMPORARY_FAILURE; of an unknown Child SA CHILD_SA_NOT_FOUND. A
//!   rekey of the IKE SA while another exchange of ours is in flight on it, or while we
//!   delete it, and a Child SA request while our IKE SA rekey is in flight, are answered
//!   TEMPORARY_FAILURE. After TEMPORARY_FAILURE we retry after a random delay, unless the
//!   SA was replaced or deleted meanwhile; after CHILD_SA_NOT_FOUND we forget the Child SA
//!   without a Delete and create it anew (§2.25).
//! * A Delete of a Child SA we are rekeying is answered as usual; when our rekey completes
//!   the new SA is kept (the peer has activated it: it replaces what was deleted) unless
//!   the peer deleted it too or the caller asked to delete the old one.

use std::time::Instant;

use ipsec_core::transform::KeId;
use ipsec_core::{CryptoProvider, IkeSpi, Mode, Spi, TrafficSelector};
use tracing::{debug, info};

use super::child::{Announce, choose_child_from, within};
use super::ike_sa_init::NONCE_LEN;
use crate::endpoint::Endpoint;
use crate::event::{ChildSaId, CloseReason, Event, IkeSaHandle};
use crate::ike_sa::{ChildRequest, CreateState, IkeSa, IkeState, PeerExchange, Request};
use crate::keys::{ChildSaKeys, IkeSaKeys};
use crate::message::header::IkeHeader;
use crate::message::{
    KePayload, NotifyPayload, NotifyType, Payload, ProtocolId, SaPayload, TsPayload,
};
use crate::proposal::{self, KeMatch};

/// Consecutive TEMPORARY_FAILURE answers after which the IKE SA is considered out of sync
/// (§2.25: "after several minutes").
const MAX_TEMPORARY_FAILURES: u32 = 30;
/// INVALID_KE_PAYLOAD rounds tolerated for one Child SA.
const MAX_KE_RETRIES: u32 = 2;

/// The payloads of a CREATE_CHILD_SA message, picked out.
#[derive(Default)]
struct Parsed<'a> {
    sa: Option<&'a SaPayload>,
    nonce: Option<&'a [u8]>,
    ke: Option<&'a KePayload>,
    tsi: Option<Vec<TrafficSelector>>,
    tsr: Option<Vec<TrafficSelector>>,
    rekey: Option<&'a NotifyPayload>,
    transport: bool,
    error: Option<&'a NotifyPayload>,
}

fn parse(payloads: &[Payload]) -> Parsed<'_> {
    let mut p = Parsed::default();
    for x in payloads {
        match x {
            Payload::Sa(s) => p.sa = Some(s),
            Payload::Nonce(n) => p.nonce = Some(n),
            Payload::Ke(k) => p.ke = Some(k),
            Payload::TsI(t) => p.tsi = Some(t.ip_selectors().copied().collect()),
            Payload::TsR(t) => p.tsr = Some(t.ip_selectors().copied().collect()),
            Payload::Notify(n) if n.ty == NotifyType::REKEY_SA => p.rekey = Some(n),
            Payload::Notify(n) if n.ty == NotifyType::USE_TRANSPORT_MODE => p.transport = true,
            Payload::Notify(n) if n.ty.is_error() && p.error.is_none() => p.error = Some(n),
            _ => {}
        }
    }
    p
}

fn notify(ty: NotifyType) -> Vec<Payload> {
    vec![Payload::Notify(NotifyPayload::new(ty, vec![]))]
}

/// §2.8.1: does the exchange with nonces `ours` hold the lowest of the four nonces? Slices
/// compare octet by octet, a proper prefix being lower, exactly as the RFC defines "lowest".
fn lowest_is_ours(ours: [&[u8]; 2], theirs: [&[u8]; 2]) -> bool {
    ours[0].min(ours[1]) < theirs[0].min(theirs[1])
}

impl<P: CryptoProvider> Endpoint<P> {
    // ------------------------------------------------------------------ requests we send

    /// Our CREATE_CHILD_SA request for a Child SA (§1.3.1, §1.3.3); `None` if it became moot.
    pub(crate) fn create_child_payloads(
        &mut self,
        sa: &IkeSa<P>,
        req: &ChildRequest,
    ) -> Option<(Vec<Payload>, CreateState)> {
        let mut payloads = Vec::new();
        if let Some(old) = req.rekey {
            let c = sa.child(old)?;
            if c.successor.is_some() || c.redundant || !c.active() || sa.deleting_child(old) {
                return None;
            }
            payloads.push(Payload::Notify(NotifyPayload::with_spi(
                NotifyType::REKEY_SA,
                ProtocolId::ESP,
                c.inbound_spi,
                vec![],
            )));
        }
        let (Ok(spi), Ok(ni)) = (self.fresh_child_spi(), self.random_bytes(NONCE_LEN)) else {
            debug!("crypto provider failure preparing CREATE_CHILD_SA");
            return None;
        };
        let group = req.group.or_else(|| {
            req.config
                .esp_proposals
                .iter()
                .find_map(|p| p.preferred_ke())
        });
        let ke = match group {
            Some(g) => Some(self.provider.key_exchange(g).ok()?),
            None => None,
        };
        if req.mode == Mode::Transport {
            payloads.push(Payload::Notify(NotifyPayload::new(
                NotifyType::USE_TRANSPORT_MODE,
                vec![],
            )));
        }
        payloads.push(Payload::Sa(proposal::to_sa_payload(
            &req.config.esp_proposals,
            &spi.to_bytes(),
        )));
        payloads.push(Payload::Nonce(ni.clone()));
        if let Some(k) = &ke {
            payloads.push(Payload::Ke(KePayload {
                group: k.group(),
                data: k.public_value().to_vec(),
            }));
        }
        payloads.push(Payload::TsI(TsPayload::new(req.ts_local.iter().copied())));
        payloads.push(Payload::TsR(TsPayload::new(req.ts_remote.iter().copied())));
        let cs = CreateState {
            ni,
            ke,
            child_spi: spi,
            ike_spi: IkeSpi::ZERO,
            peer: None,
            abandoned: false,
        };
        Some((payloads, cs))
    }

    /// Our CREATE_CHILD_SA request rekeying the IKE SA (§1.3.2): our new SPI in the
    /// proposals, a nonce and a KE payload (mandatory here).
    pub(crate) fn rekey_ike_payloads(
        &mut self,
        sa: &IkeSa<P>,
    ) -> Option<(Vec<Payload>, CreateState)> {
        if sa.state != IkeState::Established {
            return None;
        }
        let peer = sa.peer.clone()?;
        let group = sa
            .rekey_group
            .or_else(|| sa.suite.and_then(|s| s.key_exchange()))
            .or_else(|| peer.ike_proposals.iter().find_map(|p| p.preferred_ke()))?;
        let (Ok(spi), Ok(ni), Ok(ke)) = (
            self.fresh_ike_spi(),
            self.random_bytes(NONCE_LEN),
            self.provider.key_exchange(group),
        ) else {
            debug!("crypto provider failure preparing the IKE SA rekey");
            return None;
        };
        let payloads = vec![
            Payload::Sa(proposal::to_sa_payload(&peer.ike_proposals, &spi.0)),
            Payload::Nonce(ni.clone()),
            Payload::Ke(KePayload {
                group,
                data: ke.public_value().to_vec(),
            }),
        ];
        let cs = CreateState {
            ni,
            ke: Some(ke),
            child_spi: Spi::from_bytes([0; 4]),
            ike_spi: spi,
            peer: None,
            abandoned: false,
        };
        Some((payloads, cs))
    }

    // ------------------------------------------------------------------ responder

    /// The peer's CREATE_CHILD_SA request.
    pub(crate) fn handle_create_child_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        header: &IkeHeader,
        payloads: &[Payload],
    ) {
        let p = parse(payloads);
        let (Some(sa_payload), Some(ni)) = (p.sa, p.nonce) else {
            return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
        };
        let is_ike = sa_payload
            .proposals
            .first()
            .is_some_and(|x| x.protocol == ProtocolId::IKE);
        if is_ike {
            return self.handle_rekey_ike_request(now, sa, header, sa_payload, ni, p.ke);
        }
        if sa.state != IkeState::Established
            || sa
                .outstanding
                .as_ref()
                .is_some_and(|o| matches!(o.request, Request::RekeyIke))
        {
            // §2.25.2: we are deleting or rekeying the IKE SA; the peer retries later (on
            // the new IKE SA).
            debug!(
                sa = sa.handle.0,
                "CREATE_CHILD_SA during an IKE SA rekey or delete"
            );
            return self.respond(sa, header, notify(NotifyType::TEMPORARY_FAILURE));
        }
        let (Some(tsi), Some(tsr)) = (p.tsi, p.tsr) else {
            return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
        };
        let Some(peer) = sa.peer.clone() else {
            return self.respond(sa, header, notify(NotifyType::NO_ADDITIONAL_SAS));
        };
        // The Child SA being rekeyed, by the SPI the initiator receives on: our outbound.
        let mut old = None;
        if let Some(n) = p.rekey {
            let spi: Option<Spi> = n.spi.as_slice().try_into().ok().map(Spi::from_bytes);
            let found = spi.and_then(|spi| {
                sa.children
                    .iter()
                    .find(|c| c.outbound_spi == spi && n.protocol == ProtocolId::ESP)
            });
            let Some(c) = found else {
                debug!(sa = sa.handle.0, "rekey of an unknown Child SA");
                let nf = NotifyPayload {
                    protocol: n.protocol,
                    spi: n.spi.clone(),
                    ty: NotifyType::CHILD_SA_NOT_FOUND,
                    data: vec![],
                };
                return self.respond(sa, header, vec![Payload::Notify(nf)]);
            };
            if c.successor.is_some() || c.redundant || !c.active() || sa.deleting_child(c.id) {
                // §2.25.1: being deleted, or already replaced.
                debug!(
                    sa = sa.handle.0,
                    child = c.id.0,
                    "rekey of a Child SA going away"
                );
                return self.respond(sa, header, notify(NotifyType::TEMPORARY_FAILURE));
            }
            old = Some(c.id);
        }
        let configs = match old.and_then(|id| sa.child(id)) {
            // §2.8: the rekeyed SA keeps the negotiated selectors and mode.
            Some(c) => {
                let mut cfg = c.config.clone();
                cfg.local_ts = c.ts_local.clone();
                cfg.remote_ts = c.ts_remote.clone();
                cfg.mode = c.mode;
                vec![cfg]
            }
            None => peer.children.clone(),
        };
        let choice = match choose_child_from(
            &configs,
            sa_payload,
            &tsi,
            &tsr,
            p.transport,
            Some(p.ke.map(|k| k.group)),
        ) {
            Ok(c) => c,
            Err((n, reason)) => {
                info!(sa = sa.handle.0, %reason, "CREATE_CHILD_SA refused");
                self.child_failed(sa, "CREATE_CHILD_SA", format!("{n}: {reason}"));
                return self.respond(sa, header, notify(n));
            }
        };
        match choice.chosen.check_ke(p.ke.map(|k| k.group)) {
            KeMatch::Match => {}
            KeMatch::InvalidKePayload { requested } => {
                return self.respond(
                    sa,
                    header,
                    vec![Payload::Notify(NotifyPayload::invalid_ke(requested))],
                );
            }
            KeMatch::Unexpected => {
                return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
            }
        }
        let outbound = super::child::peer_esp_spi(&choice.chosen);
        let (Ok(outbound_spi), Ok(inbound_spi), Ok(nr), Some(keys)) = (
            outbound,
            self.fresh_child_spi(),
            self.random_bytes(NONCE_LEN),
            sa.keys.clone(),
        ) else {
            return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
        };
        let mut ker = None;
        let mut g_ir = None;
        if let (Some(group), Some(k)) = (choice.chosen.suite.key_exchange(), p.ke) {
            let Ok(kex) = self.provider.key_exchange(group) else {
                return self.respond(sa, header, notify(NotifyType::NO_PROPOSAL_CHOSEN));
            };
            ker = Some(KePayload {
                group,
                data: kex.public_value().to_vec(),
            });
            match kex.complete(&k.data) {
                Ok(g) => g_ir = Some(g),
                Err(_) => return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX)),
            }
        }
        let ck = match ChildSaKeys::derive(
            &*self.provider,
            &keys,
            &choice.chosen.suite,
            g_ir.as_ref(),
            ni,
            &nr,
        ) {
            Ok(k) => k,
            Err(e) => {
                self.child_failed(sa, &choice.config.name, e.to_string());
                return self.respond(sa, header, notify(NotifyType::NO_PROPOSAL_CHOSEN));
            }
        };
        let mut out = Vec::new();
        if choice.mode == Mode::Transport {
            out.push(Payload::Notify(NotifyPayload::new(
                NotifyType::USE_TRANSPORT_MODE,
                vec![],
            )));
        }
        out.push(Payload::Sa(SaPayload::new(vec![
            choice.chosen.response(&inbound_spi.to_bytes()),
        ])));
        out.push(Payload::Nonce(nr.clone()));
        if let Some(k) = ker {
            out.push(Payload::Ke(k));
        }
        out.push(Payload::TsI(TsPayload::new(choice.ts_i.iter().copied())));
        out.push(Payload::TsR(TsPayload::new(choice.ts_r.iter().copied())));
        let announce = if old.is_some() {
            Announce::InboundOnly
        } else {
            Announce::Established
        };
        // Install before answering: the peer may send ESP as soon as it has our response.
        let id = self.install_child(
            now,
            sa,
            choice.config,
            &choice.chosen,
            &ck,
            false,
            inbound_spi,
            outbound_spi,
            choice.ts_r,
            choice.ts_i,
            choice.mode,
            old,
            announce,
        );
        if let Some(c) = sa.child_mut(id) {
            c.made_by_request = Some(header.message_id);
        }
        if let Some(old) = old {
            if let Some(c) = sa.child_mut(old) {
                c.successor = Some(id);
                c.rekey_at = None;
            }
            // A rekey of ours for the same Child SA: in flight, it is a collision (§2.8.1);
            // not sent yet, it is moot.
            if let Some(o) = sa.outstanding.as_mut()
                && matches!(&o.request, Request::CreateChild(c) if c.rekey == Some(old))
                && let Some(cs) = o.create.as_mut()
            {
                debug!(sa = sa.handle.0, child = old.0, "Child SA rekey collision");
                cs.peer = Some(PeerExchange {
                    child: Some(id),
                    ike: None,
                    ni: ni.to_vec(),
                    nr: nr.clone(),
                });
            }
            sa.queued
                .retain(|r| !matches!(r, Request::CreateChild(c) if c.rekey == Some(old)));
            sa.delayed
                .retain(|(_, r)| !matches!(r, Request::CreateChild(c) if c.rekey == Some(old)));
        }
        self.respond(sa, header, out);
    }

    /// The peer's CREATE_CHILD_SA rekeying the IKE SA (§1.3.2, §2.18).
    fn handle_rekey_ike_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        header: &IkeHeader,
        sa_payload: &SaPayload,
        ni: &[u8],
        ke: Option<&KePayload>,
    ) {
        let ours_in_flight = sa
            .outstanding
            .as_ref()
            .map(|o| matches!(o.request, Request::RekeyIke));
        if sa.state != IkeState::Established || ours_in_flight == Some(false) {
            // §2.25.2: being deleted or rekeyed already, or another exchange of ours is in
            // flight on this IKE SA (its Child SAs would move under it).
            debug!(sa = sa.handle.0, "IKE SA rekey refused for now");
            return self.respond(sa, header, notify(NotifyType::TEMPORARY_FAILURE));
        }
        let (Some(peer), Some(ke), Some(old_keys)) = (sa.peer.clone(), ke, sa.keys.clone()) else {
            return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
        };
        let chosen = match proposal::select(&peer.ike_proposals, sa_payload, Some(ke.group)) {
            Ok(c) => c,
            Err(e) => {
                info!(sa = sa.handle.0, reason = %e, "IKE SA rekey: NO_PROPOSAL_CHOSEN");
                return self.respond(sa, header, notify(NotifyType::NO_PROPOSAL_CHOSEN));
            }
        };
        match chosen.check_ke(Some(ke.group)) {
            KeMatch::Match => {}
            KeMatch::InvalidKePayload { requested } => {
                return self.respond(
                    sa,
                    header,
                    vec![Payload::Notify(NotifyPayload::invalid_ke(requested))],
                );
            }
            KeMatch::Unexpected => {
                return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
            }
        }
        let peer_spi: Option<IkeSpi> = chosen
            .peer_spi
            .as_slice()
            .try_into()
            .ok()
            .map(IkeSpi)
            .filter(|s: &IkeSpi| !s.is_zero());
        let (Some(spi_i), Ok(spi_r), Ok(nr), Ok(kex)) = (
            peer_spi,
            self.fresh_ike_spi(),
            self.random_bytes(NONCE_LEN),
            self.provider.key_exchange(ke.group),
        ) else {
            return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
        };
        let public = kex.public_value().to_vec();
        let Ok(g_ir) = kex.complete(&ke.data) else {
            return self.respond(sa, header, notify(NotifyType::INVALID_SYNTAX));
        };
        let Ok(keys) = IkeSaKeys::derive_rekey(
            &*self.provider,
            &old_keys,
            &chosen.suite,
            &g_ir,
            ni,
            &nr,
            spi_i,
            spi_r,
        ) else {
            return self.respond(sa, header, notify(NotifyType::NO_PROPOSAL_CHOSEN));
        };
        let Some(new) = self.successor_sa(now, sa, false, spi_i, spi_r, ni, &nr, keys) else {
            return self.respond(sa, header, notify(NotifyType::NO_PROPOSAL_CHOSEN));
        };
        let out = vec![
            Payload::Sa(SaPayload::new(vec![chosen.response(&spi_r.0)])),
            Payload::Nonce(nr.clone()),
            Payload::Ke(KePayload {
                group: ke.group,
                data: public,
            }),
        ];
        if ours_in_flight == Some(true) {
            // §2.8.2: a collision; our response decides which IKE SA survives. Until then
            // the Child SAs stay here.
            debug!(sa = sa.handle.0, "IKE SA rekey collision");
            if let Some(cs) = sa.outstanding.as_mut().and_then(|o| o.create.as_mut()) {
                cs.peer = Some(PeerExchange {
                    child: None,
                    ike: Some(new),
                    ni: ni.to_vec(),
                    nr,
                });
            }
            let forget = now + self.give_up_after();
            if let Some(n) = self.sas.get_mut(&new) {
                n.adopt_from = Some(sa.handle);
                n.announced = false;
                n.forget_at = Some(forget);
            }
        } else {
            self.move_to(now, sa, new);
            sa.forget_at = Some(now + self.give_up_after());
        }
        self.respond(sa, header, out);
    }

    // ------------------------------------------------------------------ initiator

    /// The response to our CREATE_CHILD_SA for a Child SA.
    pub(crate) fn handle_create_child_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        req: ChildRequest,
        cs: CreateState,
        payloads: &[Payload],
    ) {
        let p = parse(payloads);
        let name = req.config.name.clone();
        let rekey = req.rekey;
        if p.sa.is_none()
            && let Some(err) = p.error
        {
            return self.child_error(now, sa, req, err);
        }
        let (Some(sa_payload), Some(nr), Some(tsi), Some(tsr), Some(keys)) =
            (p.sa, p.nonce, p.tsi, p.tsr, sa.keys.clone())
        else {
            return self.create_failed(
                now,
                sa,
                rekey,
                &name,
                "malformed CREATE_CHILD_SA response".into(),
            );
        };
        sa.temporary_failures = 0;
        let chosen = match proposal::check_response(&req.config.esp_proposals, sa_payload) {
            Ok(c) => c,
            Err(e) => return self.create_failed(now, sa, rekey, &name, e.to_string()),
        };
        let g_ir = match (chosen.suite.key_exchange(), cs.ke, p.ke) {
            (None, _, _) => None,
            (Some(g), Some(kex), Some(ker)) if kex.group() == g && ker.group == g => {
                match kex.complete(&ker.data) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        return self.create_failed(
                            now,
                            sa,
                            rekey,
                            &name,
                            "invalid KE value".into(),
                        );
                    }
                }
            }
            _ => {
                return self.create_failed(
                    now,
                    sa,
                    rekey,
                    &name,
                    "responder KE does not match".into(),
                );
            }
        };
        let Ok(outbound_spi) = super::child::peer_esp_spi(&chosen) else {
            return self.create_failed(
                now,
                sa,
                rekey,
                &name,
                "responder SPI is not 4 octets or is reserved".into(),
            );
        };
        if !within(&tsi, &req.ts_local) || !within(&tsr, &req.ts_remote) {
            return self.create_failed(
                now,
                sa,
                rekey,
                &name,
                "responder widened the traffic selectors".into(),
            );
        }
        let mode = if req.mode == Mode::Transport && p.transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        };
        if mode != req.mode {
            return self.create_failed(
                now,
                sa,
                rekey,
                &name,
                "responder refused transport mode".into(),
            );
        }
        let ck = match ChildSaKeys::derive(
            &*self.provider,
            &keys,
            &chosen.suite,
            g_ir.as_ref(),
            &cs.ni,
            nr,
        ) {
            Ok(k) => k,
            Err(e) => return self.create_failed(now, sa, rekey, &name, e.to_string()),
        };
        if sa.deleted_unknown.contains(&outbound_spi) {
            // The peer deleted it before its response reached us: nothing to set up.
            debug!(sa = sa.handle.0, "new Child SA already deleted by the peer");
            return;
        }
        // What becomes of it (see the module docs).
        let mut delete_old = false;
        let mut loser_of_peer = None;
        let announce = match req.rekey {
            None => Announce::Established,
            Some(old) => {
                let alive = sa.child(old).is_some();
                match &cs.peer {
                    _ if cs.abandoned => Announce::Hidden,
                    Some(pe) => {
                        if !alive || lowest_is_ours([&cs.ni, nr], [&pe.ni, &pe.nr]) {
                            Announce::Hidden
                        } else {
                            delete_old = true;
                            loser_of_peer = pe.child;
                            Announce::Established
                        }
                    }
                    None => {
                        delete_old = alive;
                        Announce::Established
                    }
                }
            }
        };
        let id = self.install_child(
            now,
            sa,
            req.config,
            &chosen,
            &ck,
            true,
            cs.child_spi,
            outbound_spi,
            tsi,
            tsr,
            mode,
            req.rekey,
            announce,
        );
        if let Some(l) = loser_of_peer.and_then(|l| sa.child_mut(l)) {
            l.redundant = true;
        }
        if announce == Announce::Hidden {
            debug!(sa = sa.handle.0, child = id.0, "redundant Child SA deleted");
            // With the caller's Delete of the old one if that is still queued.
            let queued = sa.queued.iter_mut().find_map(|r| match r {
                Request::DeleteChildren(ids) if req.rekey.is_some_and(|o| ids.contains(&o)) => {
                    Some(ids)
                }
                _ => None,
            });
            match queued {
                Some(ids) => ids.push(id),
                None => self.queue_request(now, sa, Request::DeleteChildren(vec![id])),
            }
            return;
        }
        if let Some(old) = req.rekey {
            if let Some(c) = sa.child_mut(old) {
                c.successor = Some(id);
                c.rekey_at = None;
            }
            if delete_old && !sa.deleting_child(old) {
                self.queue_request(now, sa, Request::DeleteChildren(vec![old]));
            }
        }
    }

    /// An error notify instead of a Child SA (§2.21.4, §2.25).
    fn child_error(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        mut req: ChildRequest,
        err: &NotifyPayload,
    ) {
        let old = req.rekey.and_then(|id| sa.child(id));
        let moot = old.is_some_and(|c| c.successor.is_some() || c.redundant)
            || (req.rekey.is_some() && old.is_none());
        match err.ty {
            NotifyType::TEMPORARY_FAILURE => {
                sa.temporary_failures += 1;
                if sa.temporary_failures > MAX_TEMPORARY_FAILURES {
                    return self.retire(
                        sa,
                        CloseReason::Protocol("TEMPORARY_FAILURE for minutes".into()),
                    );
                }
                if !moot {
                    let at = now + self.retry_delay();
                    debug!(
                        sa = sa.handle.0,
                        "TEMPORARY_FAILURE: CREATE_CHILD_SA retried later"
                    );
                    req.group = None;
                    sa.delayed.push((at, Request::CreateChild(Box::new(req))));
                }
            }
            NotifyType::CHILD_SA_NOT_FOUND => {
                // §2.25: forget it without a Delete, then create it from scratch.
                let Some(id) = req.rekey.filter(|_| !moot) else {
                    return;
                };
                info!(
                    sa = sa.handle.0,
                    child = id.0,
                    "CHILD_SA_NOT_FOUND: creating anew"
                );
                self.remove_children(now, sa, |c| c.id != id);
                req.rekey = None;
                req.group = None;
                self.queue_request(now, sa, Request::CreateChild(Box::new(req)));
            }
            NotifyType::INVALID_KE_PAYLOAD => {
                let retry = err
                    .data_u16()
                    .and_then(|g| proposal::retry_group(&req.config.esp_proposals, KeId(g)));
                match retry {
                    Some(g) if req.ke_retries < MAX_KE_RETRIES && !moot => {
                        req.group = Some(g);
                        req.ke_retries += 1;
                        sa.queued.push_front(Request::CreateChild(Box::new(req)));
                    }
                    _ => self.create_failed(
                        now,
                        sa,
                        req.rekey.filter(|_| !moot),
                        &req.config.name,
                        err.ty.to_string(),
                    ),
                }
            }
            ty => {
                info!(sa = sa.handle.0, child = %req.config.name, error = %ty, "CREATE_CHILD_SA failed");
                self.create_failed(
                    now,
                    sa,
                    req.rekey.filter(|_| !moot),
                    &req.config.name,
                    ty.to_string(),
                );
            }
        }
    }

    /// A CREATE_CHILD_SA of ours failed: report it; if it was rekeying a Child SA that is
    /// still in use, try again later (until that SA's hard lifetime).
    fn create_failed(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        rekey: Option<ChildSaId>,
        name: &str,
        reason: String,
    ) {
        self.child_failed(sa, name, reason);
        let Some(old) = rekey else { return };
        let retry = sa
            .child(old)
            .filter(|c| c.successor.is_none() && !c.redundant)
            .map(|c| self.rekey_retry_at(now, c.expire_at));
        let handle = sa.handle;
        if let (Some(at), Some(c)) = (retry, sa.child_mut(old)) {
            debug!(sa = handle.0, child = old.0, retry = ?at.map(|t| t - now), "Child SA rekey failed");
            c.rekey_at = at;
        }
    }

    /// The response to our IKE SA rekey.
    pub(crate) fn handle_rekey_ike_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        cs: CreateState,
        payloads: &[Payload],
    ) {
        let p = parse(payloads);
        let answered = cs.peer.as_ref().and_then(|pe| pe.ike);
        let made = (|| {
            if p.sa.is_none() {
                return Err(p.error.map(|e| e.ty));
            }
            let (Some(peer), Some(sa_payload), Some(nr), Some(ker), Some(kex), Some(old_keys)) =
                (sa.peer.clone(), p.sa, p.nonce, p.ke, cs.ke, sa.keys.clone())
            else {
                return Err(None);
            };
            let chosen =
                proposal::check_response(&peer.ike_proposals, sa_payload).map_err(|_| None)?;
            if chosen.suite.ke != ker.group || kex.group() != ker.group {
                return Err(None);
            }
            let spi_r: IkeSpi = chosen
                .peer_spi
                .as_slice()
                .try_into()
                .ok()
                .map(IkeSpi)
                .filter(|s: &IkeSpi| !s.is_zero())
                .ok_or(None)?;
            let g_ir = kex.complete(&ker.data).map_err(|_| None)?;
            let keys = IkeSaKeys::derive_rekey(
                &*self.provider,
                &old_keys,
                &chosen.suite,
                &g_ir,
                &cs.ni,
                nr,
                cs.ike_spi,
                spi_r,
            )
            .map_err(|_| None)?;
            Ok((spi_r, nr.to_vec(), keys))
        })();
        let (spi_r, nr, keys) = match made {
            Ok(x) => x,
            Err(err) => {
                // Failed; if we answered the peer's rekey meanwhile, that one survives.
                if let Some(n) = answered.filter(|_| sa.state == IkeState::Established) {
                    self.move_to(now, sa, n);
                    sa.forget_at = Some(now + self.give_up_after());
                } else if err == Some(NotifyType::TEMPORARY_FAILURE)
                    && sa.state == IkeState::Established
                {
                    sa.temporary_failures += 1;
                    if sa.temporary_failures > MAX_TEMPORARY_FAILURES {
                        return self.retire(
                            sa,
                            CloseReason::Protocol("TEMPORARY_FAILURE for minutes".into()),
                        );
                    }
                    let at = now + self.retry_delay();
                    sa.delayed.push((at, Request::RekeyIke));
                } else if let Some(g) = p
                    .error
                    .filter(|e| e.ty == NotifyType::INVALID_KE_PAYLOAD)
                    .and_then(|e| e.data_u16())
                    .and_then(|g| proposal::retry_group(&sa.peer.as_ref()?.ike_proposals, KeId(g)))
                    .filter(|_| {
                        sa.state == IkeState::Established && sa.rekey_ke_retries < MAX_KE_RETRIES
                    })
                {
                    // §1.3.2 with §1.2: the peer wants another group; ask again with it.
                    debug!(sa = sa.handle.0, group = %g, "IKE SA rekey: INVALID_KE_PAYLOAD");
                    sa.rekey_group = Some(g);
                    sa.rekey_ke_retries += 1;
                    sa.queued.push_front(Request::RekeyIke);
                } else if sa.state == IkeState::Established {
                    sa.rekey_at = self.rekey_retry_at(now, sa.expire_at);
                    info!(sa = sa.handle.0, error = ?err, retry = ?sa.rekey_at.map(|t| t - now),
                        "IKE SA rekey failed");
                }
                return;
            }
        };
        sa.temporary_failures = 0;
        let (ni, spi_i) = (cs.ni.clone(), cs.ike_spi);
        let Some(new) = self.successor_sa(now, sa, true, spi_i, spi_r, &ni, &nr, keys) else {
            return;
        };
        let ours_loses = match &cs.peer {
            _ if sa.state != IkeState::Established => true,
            Some(pe) => lowest_is_ours([&ni, &nr], [&pe.ni, &pe.nr]),
            None => false,
        };
        if ours_loses {
            // §2.8.2: ours is redundant; the peer's (if any) takes the Child SAs, and the
            // peer deletes the old IKE SA.
            debug!(
                sa = sa.handle.0,
                redundant = new.0,
                "IKE SA rekey collision lost"
            );
            if let Some(n) = answered.filter(|_| sa.state == IkeState::Established) {
                self.move_to(now, sa, n);
                sa.forget_at = Some(now + self.give_up_after());
            }
            self.with_sa(new, |ep, s| {
                s.announced = false;
                s.state = IkeState::Rekeyed;
                ep.queue_request(now, s, Request::DeleteIke);
            });
            return;
        }
        if let Some(n) = answered
            && let Some(loser) = self.sas.get_mut(&n)
        {
            // The peer deletes its redundant IKE SA; it must not take the Child SAs.
            loser.adopt_from = None;
        }
        self.move_to(now, sa, new);
        // §2.8: the Delete of the old IKE SA is the last request on it.
        sa.queued.clear();
        self.queue_request(now, sa, Request::DeleteIke);
    }

    // ------------------------------------------------------------------ IKE SA moves

    /// Creates the IKE SA that a rekey makes (§2.18): same peer, addresses, NAT state;
    /// new SPIs, nonces and keys; message IDs from 0. Not announced yet.
    #[allow(clippy::too_many_arguments)]
    fn successor_sa(
        &mut self,
        now: Instant,
        old: &IkeSa<P>,
        we_initiated: bool,
        spi_i: IkeSpi,
        spi_r: IkeSpi,
        ni: &[u8],
        nr: &[u8],
        keys: IkeSaKeys,
    ) -> Option<IkeSaHandle> {
        let handle = self.new_handle();
        let mut n = IkeSa::new(handle, we_initiated, now, old.local, old.remote);
        n.state = IkeState::Established;
        n.peer = old.peer.clone();
        n.remote_id = old.remote_id.clone();
        n.spi_i = spi_i;
        n.spi_r = spi_r;
        n.ni = ni.to_vec();
        n.nr = nr.to_vec();
        n.nat = old.nat;
        n.fake_nat = old.fake_nat;
        n.next_keepalive = old.next_keepalive;
        self.arm_ike_lifetimes(now, &mut n);
        if let Err(e) = n.protect_with(&*self.provider, keys) {
            debug!(error = %e, "cannot protect the rekeyed IKE SA");
            return None;
        }
        let local = n.local_spi();
        if self.by_spi.contains_key(&local) {
            return None;
        }
        self.by_spi.insert(local, handle);
        self.sas.insert(handle, n);
        Some(handle)
    }

    /// Moves the Child SAs and pending requests of `old` to the IKE SA `new` (§2.8: "an IKE
    /// SA so created inherits all of the original IKE SA's Child SAs") and reports it.
    pub(crate) fn move_to(&mut self, now: Instant, old: &mut IkeSa<P>, new: IkeSaHandle) {
        let Some(mut n) = self.sas.remove(&new) else {
            return;
        };
        info!(old = old.handle.0, new = new.0, "IKE SA rekeyed");
        for mut c in old.children.drain(..) {
            if let Some(info) = c.pending.as_mut() {
                info.ike_sa = new;
            }
            n.children.push(c);
        }
        let keep = |r: &Request| matches!(r, Request::CreateChild(_) | Request::DeleteChildren(_));
        n.queued.extend(old.queued.drain(..).filter(keep));
        n.delayed
            .extend(old.delayed.drain(..).filter(|(_, r)| keep(r)));
        n.deleted_unknown = std::mem::take(&mut old.deleted_unknown);
        n.announced = true;
        n.adopt_from = None;
        n.forget_at = None;
        old.state = IkeState::Rekeyed;
        old.announced = false;
        old.rekey_at = None;
        old.next_keepalive = None;
        self.push_event(Event::IkeSaRekeyed {
            old: old.handle,
            new,
        });
        self.send_queued(now, &mut n);
        self.put_back(n);
    }

    /// The peer's request `msg_id` proves it received our responses to its earlier
    /// requests (§2.3): Child SAs those made by its rekeys may be used now (§2.8). Usually
    /// the peer's Delete of the old Child SA comes first; this covers a Child SA whose
    /// predecessor went away otherwise (its hard lifetime, a collision).
    pub(crate) fn activate_proven(&mut self, sa: &mut IkeSa<P>, msg_id: u32) {
        let handle = sa.handle;
        // Not while our own rekey of the same Child SA is in flight: that collision decides
        // first (the peer's request may be the Delete of its redundant SA, §2.8.1).
        let undecided: Vec<ChildSaId> = sa
            .children
            .iter()
            .filter(|o| sa.rekeying_child(o.id))
            .filter_map(|o| o.successor)
            .collect();
        for c in &mut sa.children {
            if c.redundant
                || undecided.contains(&c.id)
                || c.made_by_request.is_none_or(|m| m >= msg_id)
            {
                continue;
            }
            if let Some(mut info) = c.pending.take() {
                info.ike_sa = handle;
                info!(sa = handle.0, child = c.id.0, "rekeyed Child SA in use");
                self.push_event(Event::ChildSaEstablished(info));
            }
        }
    }

    /// The peer sent a request on the IKE SA its colliding rekey made: it is the survivor.
    pub(crate) fn adopt(&mut self, now: Instant, sa: &mut IkeSa<P>) {
        let Some(from) = sa.adopt_from.take() else {
            return;
        };
        let new = sa.handle;
        let Some(mut old) = self.sas.remove(&from) else {
            return;
        };
        if old.state == IkeState::Established {
            // `move_to` expects the new SA in the table; it is out while we handle it.
            debug!(old = from.0, new = new.0, "peer uses its rekeyed IKE SA");
            for mut c in old.children.drain(..) {
                if let Some(info) = c.pending.as_mut() {
                    info.ike_sa = new;
                }
                sa.children.push(c);
            }
            let keep =
                |r: &Request| matches!(r, Request::CreateChild(_) | Request::DeleteChildren(_));
            sa.queued.extend(old.queued.drain(..).filter(keep));
            sa.delayed
                .extend(old.delayed.drain(..).filter(|(_, r)| keep(r)));
            sa.announced = true;
            sa.forget_at = None;
            old.state = IkeState::Rekeyed;
            old.announced = false;
            old.rekey_at = None;
            old.next_keepalive = None;
            old.forget_at = Some(now + self.give_up_after());
            self.push_event(Event::IkeSaRekeyed { old: from, new });
        }
        self.put_back(old);
        self.send_queued(now, sa);
    }

    /// How long a peer may take to finish an exchange: all retransmissions.
    pub(crate) fn give_up_after(&self) -> std::time::Duration {
        let r = &self.config.retransmit;
        (0..=r.max_retransmits + 1).map(|n| r.timeout(n)).sum()
    }

    /// The Child SAs of an IKE SA that are in use, for tests and diagnostics.
    #[allow(dead_code)]
    pub(crate) fn active_children(&self, sa: IkeSaHandle) -> Vec<ChildSaId> {
        self.sas
            .get(&sa)
            .map(|s| {
                s.children
                    .iter()
                    .filter(|c| c.active())
                    .map(|c| c.id)
                    .collect()
            })
            .unwrap_or_default()
    }
}

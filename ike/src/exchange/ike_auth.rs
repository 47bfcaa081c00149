//! IKE_AUTH (RFC 7296 §1.2, §2.15): authenticate both sides with the pre-shared key and set
//! up the first Child SA, with traffic selector narrowing (§2.9), transport mode (§1.3.1),
//! INITIAL_CONTACT (§2.4) and the error notifies of §2.21.2.

use std::time::Instant;

use ipsec_core::{CryptoProvider, Mode, TrafficSelector};
use tracing::{debug, info};

use super::child::{choose_child, strip_ke, within, without_ke};
use crate::auth::{AuthInput, Psk, Signer, psk_auth, verify_psk_auth};
use crate::config::{PeerConfig, display_identity};
use crate::endpoint::Endpoint;
use crate::event::{CloseReason, Event};
use crate::ike_sa::{IkeSa, IkeState, PendingChild, Request};
use crate::keys::ChildSaKeys;
use crate::message::header::{ExchangeType, IkeHeader};
use crate::message::{
    AuthMethod, AuthPayload, NotifyPayload, NotifyType, Payload, SaPayload, TsPayload,
};
use crate::proposal;

struct AuthPayloads<'a> {
    id: Option<&'a crate::message::Identification>,
    idr: Option<&'a crate::message::Identification>,
    auth: Option<&'a AuthPayload>,
    sa: Option<&'a SaPayload>,
    tsi: Option<Vec<TrafficSelector>>,
    tsr: Option<Vec<TrafficSelector>>,
    transport: bool,
    initial_contact: bool,
    error: Option<NotifyType>,
}

fn collect(payloads: &[Payload], initiator_sent: bool) -> AuthPayloads<'_> {
    let mut a = AuthPayloads {
        id: None,
        idr: None,
        auth: None,
        sa: None,
        tsi: None,
        tsr: None,
        transport: false,
        initial_contact: false,
        error: None,
    };
    for p in payloads {
        match p {
            Payload::IdI(i) if initiator_sent => a.id = Some(i),
            Payload::IdR(i) if initiator_sent => a.idr = Some(i),
            Payload::IdR(i) => a.id = Some(i),
            Payload::Auth(x) => a.auth = Some(x),
            Payload::Sa(s) => a.sa = Some(s),
            Payload::TsI(t) => a.tsi = Some(t.ip_selectors().copied().collect()),
            Payload::TsR(t) => a.tsr = Some(t.ip_selectors().copied().collect()),
            Payload::Notify(n) if n.ty == NotifyType::USE_TRANSPORT_MODE => a.transport = true,
            Payload::Notify(n) if n.ty == NotifyType::INITIAL_CONTACT => a.initial_contact = true,
            Payload::Notify(n) if n.ty.is_error() && a.error.is_none() => a.error = Some(n.ty),
            _ => {}
        }
    }
    a
}

impl<P: CryptoProvider> Endpoint<P> {
    fn psk_for(&self, peer: &PeerConfig) -> Option<Psk> {
        Psk::with_min_len(peer.psk.clone(), self.config.min_psk_len).ok()
    }

    /// Initiator: the IKE_AUTH request with the first Child SA.
    pub(crate) fn send_auth(&mut self, now: Instant, sa: &mut IkeSa<P>) {
        let peer = sa.peer.clone().expect("initiator SAs have a peer");
        let Some(child) = peer.children.first().cloned() else {
            return self.retire(
                sa,
                CloseReason::Protocol("connection has no child configuration".into()),
            );
        };
        let (Ok(inbound_spi), Some(psk), Some(keys)) = (
            self.fresh_child_spi(),
            self.psk_for(&peer),
            sa.keys.as_ref(),
        ) else {
            return self.retire(sa, CloseReason::Protocol("cannot prepare IKE_AUTH".into()));
        };
        let id_body = peer.local_id.auth_octets();
        let input = AuthInput {
            signer: Signer::Initiator,
            real_message: &sa.init_request,
            peer_nonce: &sa.nr,
            id_body: &id_body,
        };
        let auth = match psk_auth(&*self.provider, keys, &psk, &input) {
            Ok(a) => a,
            Err(e) => return self.retire(sa, CloseReason::Protocol(e.to_string())),
        };
        let mut payloads = vec![Payload::IdI(peer.local_id.clone())];
        if let Some(r) = &peer.remote_id {
            payloads.push(Payload::IdR(r.clone()));
        }
        payloads.push(Payload::Auth(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: auth,
        }));
        if peer.initial_contact {
            payloads.push(Payload::Notify(NotifyPayload::new(
                NotifyType::INITIAL_CONTACT,
                vec![],
            )));
        }
        if child.mode == Mode::Transport {
            payloads.push(Payload::Notify(NotifyPayload::new(
                NotifyType::USE_TRANSPORT_MODE,
                vec![],
            )));
        }
        payloads.push(Payload::Sa(proposal::to_sa_payload(
            &without_ke(&child.esp_proposals),
            &inbound_spi.to_bytes(),
        )));
        payloads.push(Payload::TsI(TsPayload::new(child.local_ts.iter().copied())));
        payloads.push(Payload::TsR(TsPayload::new(
            child.remote_ts.iter().copied(),
        )));
        let msg_id = sa.next_msg_id;
        match sa.seal(ExchangeType::IKE_AUTH, false, msg_id, &payloads) {
            Ok(bytes) => {
                sa.state = IkeState::AuthSent;
                let pending = PendingChild {
                    config: child,
                    inbound_spi,
                };
                self.send_request(now, sa, Request::Auth(Box::new(pending)), bytes, None);
            }
            Err(e) => self.retire(sa, CloseReason::Protocol(e.to_string())),
        }
    }

    /// Responder: IKE_AUTH request (§1.2). Identity selects the connection; the PSK MAC
    /// must verify; then the Child SA is negotiated (its failure leaves the IKE SA up).
    pub(crate) fn handle_auth_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        header: &IkeHeader,
        payloads: &[Payload],
    ) {
        let a = collect(payloads, true);
        let (Some(idi), Some(auth)) = (a.id, a.auth) else {
            self.respond(
                sa,
                header,
                vec![Payload::Notify(NotifyPayload::new(
                    NotifyType::INVALID_SYNTAX,
                    vec![],
                ))],
            );
            return self.retire(
                sa,
                CloseReason::Protocol("IKE_AUTH request without IDi or AUTH".into()),
            );
        };
        let remote = sa.remote;
        let keys = sa.keys.clone().expect("keys exist after IKE_SA_INIT");
        let id_body = idi.auth_octets();
        let input = AuthInput {
            signer: Signer::Initiator,
            real_message: &sa.init_request,
            peer_nonce: &sa.nr,
            id_body: &id_body,
        };
        let suite = sa.suite;
        let matched = self
            .config
            .peers
            .iter()
            .filter(|p| p.remote_addrs.is_empty() || p.remote_addrs.contains(&remote.ip()))
            .filter(|p| p.remote_id.as_ref().is_none_or(|id| id == idi))
            .filter(|p| a.idr.is_none_or(|r| *r == p.local_id))
            // The connection that authenticates the peer must allow the IKE suite
            // negotiated at IKE_SA_INIT (chosen before the identity was known).
            .filter(|p| suite.is_some_and(|s| proposal::allows(&p.ike_proposals, &s)))
            .find(|p| {
                auth.method == AuthMethod::SHARED_KEY_MIC
                    && self.psk_for(p).is_some_and(|psk| {
                        verify_psk_auth(&*self.provider, &keys, &psk, &input, &auth.data).is_ok()
                    })
            })
            .cloned();
        let Some(peer) = matched else {
            info!(%remote, id = %display_identity(idi), "IKE_AUTH: authentication failed");
            self.respond(
                sa,
                header,
                vec![Payload::Notify(NotifyPayload::new(
                    NotifyType::AUTHENTICATION_FAILED,
                    vec![],
                ))],
            );
            self.push_event(Event::NegotiationFailed {
                remote,
                reason: format!(
                    "AUTHENTICATION_FAILED: peer {} did not prove a configured pre-shared key",
                    display_identity(idi)
                ),
            });
            return self.retire(sa, CloseReason::AuthenticationFailed);
        };
        let Some(psk) = self.psk_for(&peer) else {
            return;
        };
        let our_id = peer.local_id.auth_octets();
        let input = AuthInput {
            signer: Signer::Responder,
            real_message: &sa.init_response,
            peer_nonce: &sa.ni,
            id_body: &our_id,
        };
        let Ok(our_auth) = psk_auth(&*self.provider, &keys, &psk, &input) else {
            return;
        };
        // §2.4: the peer has no state from before; drop our old SAs with it. Not for a
        // connection any identity may use (a group PSK): one member could end another's SAs.
        if a.initial_contact && peer.remote_id.is_some() {
            let stale: Vec<_> = self
                .sas
                .values()
                .filter(|o| {
                    o.is_established()
                        && o.remote_id.as_ref() == Some(idi)
                        && o.peer.as_ref().is_some_and(|p| p.name == peer.name)
                })
                .map(|o| o.handle)
                .collect();
            for h in stale {
                self.destroy(h, CloseReason::InitialContact);
            }
        }
        sa.peer = Some(peer.clone());
        sa.remote_id = Some(idi.clone());
        sa.state = IkeState::Established;
        self.arm_ike_lifetimes(now, sa);
        sa.announced = true;
        sa.half_open_deadline = None;
        self.forget_half_open(sa.half_open_key.take());
        if sa.nat.local_behind_nat {
            sa.next_keepalive = Some(now + self.config.nat_keepalive);
        }
        let mut out = vec![
            Payload::IdR(peer.local_id.clone()),
            Payload::Auth(AuthPayload {
                method: AuthMethod::SHARED_KEY_MIC,
                data: our_auth,
            }),
        ];
        self.announce_established(sa);
        let child = match (a.sa, a.tsi.as_deref(), a.tsr.as_deref()) {
            (Some(p), Some(tsi), Some(tsr)) => Some(choose_child(&peer, p, tsi, tsr, a.transport)),
            _ => None,
        };
        match child {
            Some(Ok(choice)) => {
                let spi_ok = super::child::peer_esp_spi(&choice.chosen);
                let (Ok(outbound_spi), Ok(inbound_spi)) = (spi_ok, self.fresh_child_spi()) else {
                    out.push(Payload::Notify(NotifyPayload::new(
                        NotifyType::INVALID_SYNTAX,
                        vec![],
                    )));
                    return self.respond(sa, header, out);
                };
                match ChildSaKeys::derive(
                    &*self.provider,
                    &keys,
                    &choice.chosen.suite,
                    None,
                    &sa.ni,
                    &sa.nr,
                ) {
                    Ok(ck) => {
                        if choice.mode == Mode::Transport {
                            out.push(Payload::Notify(NotifyPayload::new(
                                NotifyType::USE_TRANSPORT_MODE,
                                vec![],
                            )));
                        }
                        out.push(Payload::Sa(SaPayload::new(vec![
                            choice.chosen.response(&inbound_spi.to_bytes()),
                        ])));
                        out.push(Payload::TsI(TsPayload::new(choice.ts_i.iter().copied())));
                        out.push(Payload::TsR(TsPayload::new(choice.ts_r.iter().copied())));
                        // Install before answering: the peer may send ESP as soon as it has
                        // our response.
                        self.install_child(
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
                            None,
                            super::child::Announce::Established,
                        );
                    }
                    Err(e) => {
                        out.push(Payload::Notify(NotifyPayload::new(
                            NotifyType::NO_PROPOSAL_CHOSEN,
                            vec![],
                        )));
                        self.child_failed(sa, "first child", e.to_string());
                    }
                }
            }
            Some(Err((notify, reason))) => {
                info!(sa = sa.handle.0, %reason, "IKE_AUTH: Child SA refused");
                out.push(Payload::Notify(NotifyPayload::new(notify, vec![])));
                self.child_failed(sa, "first child", format!("{notify}: {reason}"));
            }
            None => {}
        }
        self.respond(sa, header, out);
    }

    fn announce_established(&mut self, sa: &IkeSa<P>) {
        let peer = sa.peer.as_ref().expect("established SAs have a peer");
        info!(sa = sa.handle.0, peer = %peer.name, remote = %sa.remote, "IKE SA established");
        self.push_event(Event::IkeSaEstablished {
            sa: sa.handle,
            peer: peer.name.clone(),
            local_id: peer.local_id.clone(),
            remote_id: sa.remote_id.clone().expect("authenticated"),
            local: sa.local,
            remote: sa.remote,
            nat: sa.nat,
            suite: sa.suite.map(|s| s.to_string()).unwrap_or_default(),
        });
    }

    pub(crate) fn child_failed(&mut self, sa: &IkeSa<P>, name: &str, reason: String) {
        self.push_event(Event::ChildSaFailed {
            ike_sa: sa.handle,
            name: name.to_string(),
            reason,
        });
    }

    /// Initiator: the IKE_AUTH response.
    pub(crate) fn handle_auth_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        pending: PendingChild,
        payloads: &[Payload],
    ) {
        let a = collect(payloads, false);
        let peer = sa.peer.clone().expect("initiator SAs have a peer");
        let (Some(idr), Some(auth)) = (a.id, a.auth) else {
            let reason = match a.error {
                Some(NotifyType::AUTHENTICATION_FAILED) => CloseReason::AuthenticationFailed,
                Some(e) => CloseReason::PeerError(e.0, e.to_string()),
                None => CloseReason::Protocol("IKE_AUTH response without IDr or AUTH".into()),
            };
            return self.retire(sa, reason);
        };
        if peer.remote_id.as_ref().is_some_and(|want| want != idr) {
            debug!(got = %display_identity(idr), "IKE_AUTH: unexpected responder identity");
            return self.retire(sa, CloseReason::AuthenticationFailed);
        }
        let keys = sa.keys.clone().expect("keys exist after IKE_SA_INIT");
        let id_body = idr.auth_octets();
        let input = AuthInput {
            signer: Signer::Responder,
            real_message: &sa.init_response,
            peer_nonce: &sa.ni,
            id_body: &id_body,
        };
        let verified = auth.method == AuthMethod::SHARED_KEY_MIC
            && self.psk_for(&peer).is_some_and(|psk| {
                verify_psk_auth(&*self.provider, &keys, &psk, &input, &auth.data).is_ok()
            });
        if !verified {
            info!(
                sa = sa.handle.0,
                "IKE_AUTH: responder failed to authenticate"
            );
            return self.retire(sa, CloseReason::AuthenticationFailed);
        }
        sa.remote_id = Some(idr.clone());
        sa.state = IkeState::Established;
        self.arm_ike_lifetimes(now, sa);
        self.announce_established(sa);
        let child = pending.config;
        let (Some(sa_payload), Some(tsi), Some(tsr)) = (a.sa, a.tsi, a.tsr) else {
            let reason = a.error.map_or_else(
                || "responder created no Child SA".to_string(),
                |e| e.to_string(),
            );
            return self.child_failed(sa, &child.name, reason);
        };
        let chosen = match proposal::check_response(
            &without_ke(&child.esp_proposals),
            &strip_ke(sa_payload),
        ) {
            Ok(c) => c,
            Err(e) => return self.child_failed(sa, &child.name, e.to_string()),
        };
        let Ok(outbound_spi) = super::child::peer_esp_spi(&chosen) else {
            return self.child_failed(
                sa,
                &child.name,
                "responder SPI is not 4 octets or is reserved".into(),
            );
        };
        if !within(&tsi, &child.local_ts) || !within(&tsr, &child.remote_ts) {
            return self.child_failed(
                sa,
                &child.name,
                "responder widened the traffic selectors".into(),
            );
        }
        let mode = if child.mode == Mode::Transport && a.transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        };
        if mode != child.mode {
            return self.child_failed(sa, &child.name, "responder refused transport mode".into());
        }
        match ChildSaKeys::derive(&*self.provider, &keys, &chosen.suite, None, &sa.ni, &sa.nr) {
            Ok(ck) => {
                self.install_child(
                    now,
                    sa,
                    child,
                    &chosen,
                    &ck,
                    true,
                    pending.inbound_spi,
                    outbound_spi,
                    tsi,
                    tsr,
                    mode,
                    None,
                    super::child::Announce::Established,
                );
            }
            Err(e) => self.child_failed(sa, &child.name, e.to_string()),
        }
    }
}

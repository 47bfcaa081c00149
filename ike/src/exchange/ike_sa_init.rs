//! IKE_SA_INIT (RFC 7296 §1.2): negotiate the IKE SA's algorithms, exchange nonces and
//! Diffie-Hellman values, detect NATs (§2.23), with COOKIE (§2.6) and INVALID_KE_PAYLOAD
//! (§1.2) round trips.

use std::net::SocketAddr;
use std::time::Instant;

use ipsec_core::transform::KeId;
use ipsec_core::{CryptoProvider, IkeSpi};
use tracing::{debug, info};

use crate::endpoint::{CommandError, DropReason, Endpoint};
use crate::event::{CloseReason, Event};
use crate::ike_sa::{IkeSa, IkeState, Request};
use crate::keys::IkeSaKeys;
use crate::message::header::{ExchangeType, Flags, IkeHeader};
use crate::message::{KePayload, Message, NotifyPayload, NotifyType, Payload, SaPayload};
use crate::nat::{self, nat_detection_hash};
use crate::proposal::{self, KeMatch};

/// Length of the nonces we send (§2.10: at least half the PRF key size, at least 16).
pub(crate) const NONCE_LEN: usize = 32;
/// Largest IKE_SA_INIT request we keep state for (octets); real ones are well below 2 KiB.
const MAX_INIT_REQUEST: usize = 8192;
/// Cookie and INVALID_KE_PAYLOAD round trips tolerated before giving up.
const MAX_INIT_RETRIES: u32 = 5;

/// The SA, KE and Nonce payloads every IKE_SA_INIT message carries (§1.2), as
/// (nonce, SA, KE); `None` if one is missing.
fn sa_ke_nonce(payloads: &[Payload]) -> Option<(&Vec<u8>, &SaPayload, &KePayload)> {
    let (mut nonce, mut sa, mut ke) = (None, None, None);
    for p in payloads {
        match p {
            Payload::Nonce(n) => nonce = nonce.or(Some(n)),
            Payload::Sa(x) => sa = sa.or(Some(x)),
            Payload::Ke(k) => ke = ke.or(Some(k)),
            _ => {}
        }
    }
    Some((nonce?, sa?, ke?))
}

/// NAT detection as seen from `local`/`remote` with the peer's NAT_DETECTION_* notifies.
fn detect_nat(
    payloads: &[Payload],
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<nat::NatStatus> {
    let srcs: Vec<&[u8]> = notify_data(payloads, NotifyType::NAT_DETECTION_SOURCE_IP).collect();
    let dst = notify_data(payloads, NotifyType::NAT_DETECTION_DESTINATION_IP).next();
    nat::evaluate(spi_i, spi_r, local, remote, &srcs, dst)
}

fn notify_data(payloads: &[Payload], ty: NotifyType) -> impl Iterator<Item = &[u8]> {
    payloads.iter().filter_map(move |p| match p {
        Payload::Notify(n) if n.ty == ty => Some(n.data.as_slice()),
        _ => None,
    })
}

impl<P: CryptoProvider> Endpoint<P> {
    /// Initiator: sends (or re-sends with a cookie / another group) the IKE_SA_INIT request.
    pub(crate) fn start_init(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        group: Option<KeId>,
    ) -> Result<(), CommandError> {
        let peer = sa.peer.clone().expect("initiator SAs have a peer");
        let crypto = |e: ipsec_core::CryptoError| CommandError::Crypto(e.to_string());
        let group = group
            .or_else(|| peer.ike_proposals.iter().find_map(|p| p.preferred_ke()))
            .ok_or_else(|| {
                CommandError::InvalidConfig("IKE proposals name no key exchange method".into())
            })?;
        let ke = self.provider.key_exchange(group).map_err(crypto)?;
        if sa.ni.is_empty() {
            sa.ni = self.random_bytes(NONCE_LEN).map_err(crypto)?;
        }
        let mut payloads = Vec::new();
        if let Some(c) = &sa.cookie {
            // §2.6: the COOKIE notify is the first payload.
            payloads.push(Payload::Notify(NotifyPayload::new(
                NotifyType::COOKIE,
                c.clone(),
            )));
        }
        payloads.push(Payload::Sa(proposal::to_sa_payload(
            &peer.ike_proposals,
            &[],
        )));
        payloads.push(Payload::Ke(KePayload {
            group,
            data: ke.public_value().to_vec(),
        }));
        payloads.push(Payload::Nonce(sa.ni.clone()));
        let source = if peer.force_encap {
            // Like strongSwan's `encap = yes`: a source hash that cannot match makes the
            // responder see a NAT, so both sides encapsulate ESP in UDP.
            sa.fake_nat = true;
            self.random_bytes(nat::NAT_HASH_LEN).map_err(crypto)?
        } else {
            nat_detection_hash(sa.spi_i, IkeSpi::ZERO, sa.local).to_vec()
        };
        payloads.push(Payload::Notify(NotifyPayload::new(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            source,
        )));
        let dest = nat_detection_hash(sa.spi_i, IkeSpi::ZERO, sa.remote).to_vec();
        payloads.push(Payload::Notify(NotifyPayload::new(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            dest,
        )));
        let header = IkeHeader::new(
            sa.spi_i,
            IkeSpi::ZERO,
            ExchangeType::IKE_SA_INIT,
            Flags::new(true, false),
            0,
        );
        let bytes = Message::new(header, payloads)
            .and_then(|m| m.to_bytes())
            .map_err(|e| CommandError::InvalidConfig(e.to_string()))?;
        sa.ke = Some(ke);
        sa.state = IkeState::InitSent;
        sa.next_msg_id = 0;
        sa.init_request = bytes.clone();
        sa.outstanding = None;
        self.send_request(now, sa, Request::Init, bytes, None);
        Ok(())
    }

    /// Sends an unprotected IKE_SA_INIT response carrying only `notify` (§2.6, §1.2, §2.21.1).
    fn init_error(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        spi_i: IkeSpi,
        notify: NotifyPayload,
    ) {
        let header = IkeHeader::new(
            spi_i,
            IkeSpi::ZERO,
            ExchangeType::IKE_SA_INIT,
            Flags::new(false, true),
            0,
        );
        if let Ok(bytes) =
            Message::new(header, vec![Payload::Notify(notify)]).and_then(|m| m.to_bytes())
        {
            self.push_transmit(local, remote, bytes);
        }
    }

    /// Responder: an IKE_SA_INIT request (§1.2). Cookie and group checks come before any
    /// state is created or any Diffie-Hellman work is done.
    pub(crate) fn handle_init_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        // §3.1: the first message of an IKE SA has Message ID 0. Real IKE_SA_INIT messages
        // are a few hundred octets; a large one would only make half-open state expensive.
        if header.message_id != 0 || bytes.len() > MAX_INIT_REQUEST {
            return self.drop_datagram(
                DropReason::Malformed,
                "IKE_SA_INIT request with a nonzero Message ID or oversized",
            );
        }
        // A retransmission of a request we answered: the same answer again (§2.1).
        if let Some(h) = self.half_open.get(&(header.spi_i, remote)).copied() {
            let resend = self
                .sas
                .get(&h)
                .filter(|sa| sa.init_request == bytes)
                .map(|sa| sa.init_response.clone());
            match resend {
                Some(r) => {
                    self.stats.responses_resent += 1;
                    self.push_transmit(local, remote, r);
                }
                None => self.drop_datagram(
                    DropReason::OutOfWindow,
                    "second IKE_SA_INIT for a half-open SA",
                ),
            }
            return;
        }
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                if let Some((ty, data)) = e.notify() {
                    self.init_error(local, remote, header.spi_i, NotifyPayload::new(ty, data));
                }
                return self.drop_datagram(DropReason::Malformed, &e.to_string());
            }
        };
        if self.half_open.len() >= self.config.half_open_limit {
            return self.drop_datagram(DropReason::HalfOpenLimit, "too many half-open IKE SAs");
        }
        let ps = &msg.payloads;
        let Some((ni, sa_payload, ke)) = sa_ke_nonce(ps) else {
            self.init_error(
                local,
                remote,
                header.spi_i,
                NotifyPayload::new(NotifyType::INVALID_SYNTAX, vec![]),
            );
            return self
                .drop_datagram(DropReason::Malformed, "IKE_SA_INIT without SA, KE or Nonce");
        };
        if self.half_open.len() >= self.config.cookie_threshold {
            let valid = matches!(ps.first(), Some(Payload::Notify(n)) if n.ty == NotifyType::COOKIE
                && self.cookies.verify(&*self.provider, &n.data, ni, remote.ip(), header.spi_i));
            if !valid {
                let c = self
                    .cookies
                    .make(&*self.provider, ni, remote.ip(), header.spi_i);
                self.stats.cookies_sent += 1;
                self.init_error(
                    local,
                    remote,
                    header.spi_i,
                    NotifyPayload::new(NotifyType::COOKIE, c.to_vec()),
                );
                return self.drop_datagram(
                    DropReason::CookieRequired,
                    "IKE_SA_INIT without a valid cookie",
                );
            }
        }
        // Past the cookie the address is the sender's: cap what one address may hold open.
        if self
            .half_open_by_ip
            .get(&remote.ip())
            .is_some_and(|&n| n >= self.config.half_open_per_ip)
        {
            return self.drop_datagram(
                DropReason::HalfOpenLimit,
                "too many half-open IKE SAs from this address",
            );
        }
        // Which connection: the first whose address list admits the peer and whose
        // proposals match.
        let candidates: Vec<_> = self
            .config
            .peers
            .iter()
            .filter(|p| p.remote_addrs.is_empty() || p.remote_addrs.contains(&remote.ip()))
            .cloned()
            .collect();
        let mut chosen = None;
        let mut report = None;
        for cfg in &candidates {
            match proposal::select(&cfg.ike_proposals, sa_payload, Some(ke.group)) {
                Ok(c) => {
                    chosen = Some((cfg.clone(), c));
                    break;
                }
                Err(e) => report = report.or(Some(e.to_string())),
            }
        }
        let Some((cfg, chosen)) = chosen else {
            let reason =
                report.unwrap_or_else(|| format!("no connection configured for {}", remote.ip()));
            info!(%remote, %reason, "IKE_SA_INIT: NO_PROPOSAL_CHOSEN");
            self.init_error(
                local,
                remote,
                header.spi_i,
                NotifyPayload::new(NotifyType::NO_PROPOSAL_CHOSEN, vec![]),
            );
            self.push_event(Event::NegotiationFailed {
                remote,
                reason: format!("NO_PROPOSAL_CHOSEN: {reason}"),
            });
            return;
        };
        match chosen.check_ke(Some(ke.group)) {
            KeMatch::Match => {}
            KeMatch::InvalidKePayload { requested } => {
                debug!(%remote, offered = %ke.group, %requested, "IKE_SA_INIT: INVALID_KE_PAYLOAD");
                return self.init_error(
                    local,
                    remote,
                    header.spi_i,
                    NotifyPayload::invalid_ke(requested),
                );
            }
            KeMatch::Unexpected => {
                return self.init_error(
                    local,
                    remote,
                    header.spi_i,
                    NotifyPayload::new(NotifyType::INVALID_SYNTAX, vec![]),
                );
            }
        }
        // A KE value of the wrong length for its group is refused before any
        // Diffie-Hellman work (§3.4), so malformed floods cost no key generation.
        if ipsec_core::crypto::kex::public_value_len(ke.group) != Some(ke.data.len()) {
            self.init_error(
                local,
                remote,
                header.spi_i,
                NotifyPayload::new(NotifyType::INVALID_SYNTAX, vec![]),
            );
            return self.drop_datagram(DropReason::Malformed, "KE data length wrong for its group");
        }
        // Now (and only now) per-SA state and Diffie-Hellman work.
        let (Ok(spi_r), Ok(nr), Ok(kex)) = (
            self.fresh_ike_spi(),
            self.random_bytes(NONCE_LEN),
            self.provider.key_exchange(ke.group),
        ) else {
            return self.drop_datagram(DropReason::Unexpected, "crypto provider failure");
        };
        let public = kex.public_value().to_vec();
        let Ok(g_ir) = kex.complete(&ke.data) else {
            self.init_error(
                local,
                remote,
                header.spi_i,
                NotifyPayload::new(NotifyType::INVALID_SYNTAX, vec![]),
            );
            return self.drop_datagram(DropReason::Malformed, "invalid KE public value");
        };
        let Ok(keys) = IkeSaKeys::derive(
            &*self.provider,
            &chosen.suite,
            &g_ir,
            ni,
            &nr,
            header.spi_i,
            spi_r,
        ) else {
            return self.drop_datagram(DropReason::Unexpected, "key derivation failed");
        };
        let nat = detect_nat(ps, header.spi_i, IkeSpi::ZERO, local, remote);
        let mut out = vec![
            Payload::Sa(crate::message::SaPayload::new(vec![chosen.response(&[])])),
            Payload::Ke(KePayload {
                group: ke.group,
                data: public,
            }),
            Payload::Nonce(nr.clone()),
        ];
        if nat.is_some() {
            let s = nat_detection_hash(header.spi_i, spi_r, local).to_vec();
            let d = nat_detection_hash(header.spi_i, spi_r, remote).to_vec();
            out.push(Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                s,
            )));
            out.push(Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                d,
            )));
        }
        let rh = IkeHeader::new(
            header.spi_i,
            spi_r,
            ExchangeType::IKE_SA_INIT,
            Flags::new(false, true),
            0,
        );
        let Ok(response) = Message::new(rh, out).and_then(|m| m.to_bytes()) else {
            return self
                .drop_datagram(DropReason::Unexpected, "cannot encode IKE_SA_INIT response");
        };
        let handle = self.new_handle();
        let mut sa = IkeSa::new(handle, false, now, local, remote);
        sa.peer = Some(cfg);
        sa.spi_i = header.spi_i;
        sa.spi_r = spi_r;
        sa.ni = ni.clone();
        sa.nr = nr;
        sa.nat = nat.unwrap_or_default();
        sa.init_request = bytes.to_vec();
        sa.init_response = response.clone();
        sa.peer_msg_id = 1;
        sa.half_open_deadline = Some(now + self.config.half_open_timeout);
        if sa.protect_with(&*self.provider, keys).is_err() {
            return self.drop_datagram(
                DropReason::Unexpected,
                "cannot protect with the negotiated suite",
            );
        }
        debug!(sa = handle.0, %remote, suite = %chosen.suite, "IKE_SA_INIT answered");
        self.by_spi.insert(spi_r, handle);
        self.add_half_open(&mut sa, (header.spi_i, remote));
        self.sas.insert(handle, sa);
        self.push_transmit(local, remote, response);
    }

    /// Initiator: the IKE_SA_INIT response (§1.2), or a COOKIE / INVALID_KE_PAYLOAD /
    /// error notify instead of one.
    pub(crate) fn handle_init_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        dgram: crate::endpoint::Datagram<'_>,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => return self.drop_datagram(DropReason::Malformed, &e.to_string()),
        };
        let peer = sa.peer.clone().expect("initiator SAs have a peer");
        let ps = &msg.payloads;
        if let Some(cookie) = notify_data(ps, NotifyType::COOKIE).next() {
            if sa.init_retries >= MAX_INIT_RETRIES {
                return self.retire(
                    sa,
                    CloseReason::Protocol("responder keeps demanding cookies".into()),
                );
            }
            sa.init_retries += 1;
            sa.cookie = Some(cookie.to_vec());
            let group = sa.ke.as_ref().map(|k| k.group());
            if let Err(e) = self.start_init(now, sa, group) {
                self.retire(sa, CloseReason::Protocol(e.to_string()));
            }
            return;
        }
        let invalid_ke = ps.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == NotifyType::INVALID_KE_PAYLOAD => Some(n.data_u16()),
            _ => None,
        });
        if let Some(requested) = invalid_ke {
            let retry = requested.and_then(|g| proposal::retry_group(&peer.ike_proposals, KeId(g)));
            return match retry {
                Some(group) if sa.init_retries < MAX_INIT_RETRIES => {
                    debug!(sa = sa.handle.0, %group, "INVALID_KE_PAYLOAD: retrying with the requested group");
                    sa.init_retries += 1;
                    if let Err(e) = self.start_init(now, sa, Some(group)) {
                        self.retire(sa, CloseReason::Protocol(e.to_string()));
                    }
                }
                _ => {
                    let g = requested.map_or_else(|| "none".to_string(), |g| KeId(g).to_string());
                    let text = format!(
                        "responder requires key exchange {g}, which our proposals {} do not offer",
                        proposal::display_proposals(&peer.ike_proposals)
                    );
                    self.retire(sa, CloseReason::NoProposalChosen(text));
                }
            };
        }
        if let Some(err) = msg.notifies().find(|n| n.ty.is_error()) {
            let reason = if err.ty == NotifyType::NO_PROPOSAL_CHOSEN {
                CloseReason::NoProposalChosen(format!(
                    "responder accepted none of our IKE proposals {}",
                    proposal::display_proposals(&peer.ike_proposals)
                ))
            } else {
                CloseReason::PeerError(err.ty.0, err.ty.to_string())
            };
            return self.retire(sa, reason);
        }
        let Some((nr, sa_payload, ke)) = sa_ke_nonce(ps) else {
            return self.drop_datagram(
                DropReason::Malformed,
                "IKE_SA_INIT response without SA, KE or Nonce",
            );
        };
        if header.spi_r.is_zero() {
            return self.drop_datagram(
                DropReason::Malformed,
                "IKE_SA_INIT response without responder SPI",
            );
        }
        let chosen = match proposal::check_response(&peer.ike_proposals, sa_payload) {
            Ok(c) => c,
            Err(e) => {
                return self.retire(
                    sa,
                    CloseReason::Protocol(format!("IKE_SA_INIT response: {e}")),
                );
            }
        };
        let Some(kex) = sa.ke.take() else {
            return self.drop_datagram(DropReason::Unexpected, "no key exchange pending");
        };
        if chosen.suite.ke != ke.group || kex.group() != ke.group {
            return self.retire(
                sa,
                CloseReason::Protocol(format!(
                    "responder chose group {} but sent KE for {}",
                    chosen.suite.ke, ke.group
                )),
            );
        }
        let g_ir = match kex.complete(&ke.data) {
            Ok(g) => g,
            Err(_) => {
                return self.retire(
                    sa,
                    CloseReason::Protocol("invalid KE public value from responder".into()),
                );
            }
        };
        sa.spi_r = header.spi_r;
        sa.nr = nr.clone();
        let keys = match IkeSaKeys::derive(
            &*self.provider,
            &chosen.suite,
            &g_ir,
            &sa.ni,
            nr,
            sa.spi_i,
            sa.spi_r,
        ) {
            Ok(k) => k,
            Err(e) => return self.retire(sa, CloseReason::Protocol(e.to_string())),
        };
        if let Err(e) = sa.protect_with(&*self.provider, keys) {
            return self.retire(sa, CloseReason::Protocol(e.to_string()));
        }
        sa.nat = detect_nat(ps, sa.spi_i, sa.spi_r, dgram.local, dgram.remote).unwrap_or_default();
        sa.init_response = bytes.to_vec();
        sa.outstanding = None;
        sa.next_msg_id = 1;
        sa.last_heard = now;
        // §2.23: move to port 4500 once a NAT is seen (or encapsulation is forced).
        if (sa.nat.any() || sa.fake_nat) && sa.local.port() == ipsec_core::natt::IKE_PORT {
            sa.local.set_port(ipsec_core::natt::NATT_PORT);
            if sa.remote.port() == ipsec_core::natt::IKE_PORT {
                sa.remote.set_port(ipsec_core::natt::NATT_PORT);
            }
        }
        if sa.nat.local_behind_nat {
            sa.next_keepalive = Some(now + self.config.nat_keepalive);
        }
        debug!(sa = sa.handle.0, suite = %chosen.suite, nat = ?sa.nat, "IKE_SA_INIT complete");
        self.send_auth(now, sa);
    }
}

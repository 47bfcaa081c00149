//! Child SA negotiation shared by IKE_AUTH and CREATE_CHILD_SA (RFC 7296 §2.7, §2.9, §2.17):
//! ESP proposal choice, traffic selector narrowing, mode, SPIs and the ESP parameters handed
//! to the caller.

use std::time::Instant;

use ipsec_core::sa::{Direction, EspSaParams, Lifetime, LifetimeLimits, UdpEncap};
use ipsec_core::transform::TransformType;
use ipsec_core::ts::narrow;
use ipsec_core::{CryptoProvider, Mode, Spi, TrafficSelector};

use crate::config::{ChildConfig, PeerConfig};
use crate::endpoint::Endpoint;
use crate::event::{ChildSaInfo, Event};
use crate::ike_sa::{ChildSa, IkeSa};
use crate::keys::ChildSaKeys;
use crate::message::{NotifyType, SaPayload};
use crate::proposal::{Chosen, ProposalConfig};

/// Our ESP proposals without KE transforms: the Child SA of IKE_AUTH never has its own key
/// exchange (RFC 7296 §1.2), whatever the configuration says for rekeys.
pub(crate) fn without_ke(proposals: &[ProposalConfig]) -> Vec<ProposalConfig> {
    proposals
        .iter()
        .filter_map(|p| {
            ProposalConfig::new(p.protocol(), p.encr(), p.integ(), p.prf(), &[], p.esn()).ok()
        })
        .collect()
}

/// The peer's SA payload without KE transforms (for IKE_AUTH, where they are ignored).
pub(crate) fn strip_ke(sa: &SaPayload) -> SaPayload {
    let mut sa = sa.clone();
    for p in &mut sa.proposals {
        p.transforms.retain(|t| t.ty != TransformType::KE);
    }
    sa
}

/// A responder's decision for a proposed Child SA.
pub(crate) struct ChildChoice {
    pub config: ChildConfig,
    pub chosen: Chosen,
    /// Narrowed TSi (the initiator's side) and TSr.
    pub ts_i: Vec<TrafficSelector>,
    pub ts_r: Vec<TrafficSelector>,
    pub mode: Mode,
}

/// Responder: picks the child configuration whose selectors intersect the proposed ones,
/// then an ESP proposal (§2.9: narrowing to the intersection of both sides' selectors).
/// The error is the notify to answer with and a reason for logs.
pub(crate) fn choose_child(
    peer: &PeerConfig,
    proposal: &SaPayload,
    tsi: &[TrafficSelector],
    tsr: &[TrafficSelector],
    transport_requested: bool,
) -> Result<ChildChoice, (NotifyType, String)> {
    choose_child_from(
        &peer.children,
        proposal,
        tsi,
        tsr,
        transport_requested,
        None,
    )
}

/// [`choose_child`] over explicit configurations. `ke` is `None` in IKE_AUTH (KE transforms
/// ignored, §1.2), `Some(group of the KE payload, if any)` in CREATE_CHILD_SA, where a KE
/// transform in the chosen proposal means PFS (§1.3.1).
pub(crate) fn choose_child_from(
    children: &[ChildConfig],
    proposal: &SaPayload,
    tsi: &[TrafficSelector],
    tsr: &[TrafficSelector],
    transport_requested: bool,
    ke: Option<Option<ipsec_core::transform::KeId>>,
) -> Result<ChildChoice, (NotifyType, String)> {
    for child in children {
        // TSi are the initiator's addresses: our remote side. TSr: our local side.
        let ts_i = narrow(tsi, &child.remote_ts);
        let ts_r = narrow(tsr, &child.local_ts);
        if ts_i.is_empty() || ts_r.is_empty() {
            continue;
        }
        let chosen = match ke {
            None => crate::proposal::select(
                &without_ke(&child.esp_proposals),
                &strip_ke(proposal),
                None,
            ),
            Some(group) => crate::proposal::select(&child.esp_proposals, proposal, group),
        };
        let chosen = match chosen {
            Ok(c) => c,
            Err(e) => {
                return Err((
                    NotifyType::NO_PROPOSAL_CHOSEN,
                    format!("child {:?}: {e}", child.name),
                ));
            }
        };
        let mode = match (child.mode, transport_requested) {
            (Mode::Transport, true) => Mode::Transport,
            (Mode::Tunnel, _) => Mode::Tunnel,
            (Mode::Transport, false) => {
                return Err((
                    NotifyType::NO_PROPOSAL_CHOSEN,
                    format!(
                        "child {:?} requires transport mode, the peer asked for tunnel mode",
                        child.name
                    ),
                ));
            }
        };
        return Ok(ChildChoice {
            config: child.clone(),
            chosen,
            ts_i,
            ts_r,
            mode,
        });
    }
    let fmt = |v: &[TrafficSelector]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err((
        NotifyType::TS_UNACCEPTABLE,
        format!(
            "no child configuration matches TSi [{}] TSr [{}]",
            fmt(tsi),
            fmt(tsr)
        ),
    ))
}

/// The peer's ESP SPI from its proposal: four octets and not a reserved value (RFC 4303
/// §2.1: 1–255 are reserved, 0 is local use).
pub(crate) fn peer_esp_spi(chosen: &Chosen) -> Result<Spi, ()> {
    let b: [u8; 4] = chosen.peer_spi.as_slice().try_into().map_err(|_| ())?;
    let spi = Spi::from_bytes(b);
    if spi.is_assignable() {
        Ok(spi)
    } else {
        Err(())
    }
}

/// Is every selector the responder returned within what we proposed (§2.9)?
pub(crate) fn within(returned: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !returned.is_empty()
        && returned
            .iter()
            .all(|r| proposed.iter().any(|p| p.contains(r)))
}

/// How a new Child SA is reported to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Announce {
    /// [`Event::ChildSaEstablished`] now: in use at once.
    Established,
    /// [`Event::ChildSaInboundReady`] now, [`Event::ChildSaEstablished`] when activated
    /// (rekey responder, §2.8).
    InboundOnly,
    /// Not at all: it lost a collision or was abandoned, and we delete it at once.
    Hidden,
}

impl<P: CryptoProvider> Endpoint<P> {
    /// Records a negotiated Child SA and reports it as `announce` says.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn install_child(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        config: ChildConfig,
        chosen: &Chosen,
        keys: &ChildSaKeys,
        we_initiated: bool,
        inbound_spi: Spi,
        outbound_spi: Spi,
        ts_local: Vec<TrafficSelector>,
        ts_remote: Vec<TrafficSelector>,
        mode: Mode,
        replaces: Option<crate::event::ChildSaId>,
        announce: Announce,
    ) -> crate::event::ChildSaId {
        let id = self.new_child_id();
        let encap = (sa.nat.any() || sa.fake_nat).then(|| UdpEncap {
            local_port: sa.local.port(),
            remote_port: sa.remote.port(),
        });
        let lifetime = Lifetime {
            soft: LifetimeLimits::default(),
            hard: LifetimeLimits {
                time: config.life_time,
                ..Default::default()
            },
        };
        let params = |direction, spi, transform: &ipsec_core::EspTransform| EspSaParams {
            spi,
            direction,
            mode,
            transform: transform.clone(),
            esn: chosen.suite.esn,
            replay_window: config.replay_window,
            lifetime,
            encap,
            local_addr: sa.local.ip(),
            remote_addr: sa.remote.ip(),
            ts_local: ts_local.clone(),
            ts_remote: ts_remote.clone(),
        };
        let inbound = params(Direction::Inbound, inbound_spi, keys.inbound(we_initiated));
        let outbound = params(
            Direction::Outbound,
            outbound_spi,
            keys.outbound(we_initiated),
        );
        let info = ChildSaInfo {
            id,
            ike_sa: sa.handle,
            name: config.name.clone(),
            inbound,
            outbound,
            ts_local: ts_local.clone(),
            ts_remote: ts_remote.clone(),
            mode,
            suite: chosen.suite.to_string(),
            replaces,
        };
        tracing::info!(
            sa = sa.handle.0, child = id.0, name = %config.name, spi_in = %inbound_spi, spi_out = %outbound_spi,
            suite = %chosen.suite, replaces = ?replaces.map(|r| r.0), ?announce, "Child SA established"
        );
        let mut pending = None;
        match announce {
            Announce::Established => self.push_event(Event::ChildSaEstablished(Box::new(info))),
            Announce::InboundOnly => {
                self.push_event(Event::ChildSaInboundReady {
                    ike_sa: sa.handle,
                    id,
                    name: config.name.clone(),
                    inbound: Box::new(info.inbound.clone()),
                    replaces: replaces.unwrap_or(id),
                });
                pending = Some(Box::new(info));
            }
            Announce::Hidden => pending = Some(Box::new(info)),
        }
        sa.children.push(ChildSa {
            id,
            expire_at: config.life_time.map(|d| now + d),
            rekey_at: config.rekey_time.map(|d| now + self.jittered(d)),
            config,
            inbound_spi,
            outbound_spi,
            ts_local,
            ts_remote,
            mode,
            suite: chosen.suite,
            reported: announce != Announce::Hidden,
            pending,
            successor: None,
            redundant: announce == Announce::Hidden,
            made_by_request: None,
        });
        id
    }
}

//! [`ControlPlane`] for the real IKEv2 endpoint, `ike::Endpoint`: maps the configuration
//! file to `ike::EndpointConfig` / `PeerConfig` / `ChildConfig`, and `ike::Event` to
//! [`IkeEvent`].
//!
//! `ipsec-peer` carries ESP only in UDP (RFC 3948), so every connection is built with
//! `force_encap`: both ends then move to port 4500 and encapsulate, NAT or not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use ike::config::{Identity, identity_from_ip, parse_identity};
use ike::message::ProtocolId;
use ike::proposal::parse_proposals;
use ike::{ChildConfig, Endpoint, EndpointConfig, Event, IkeSaHandle, PeerConfig};
use ipsec_core::RustCrypto;

use crate::config::{Config, Connection, StartAction};
use crate::esp_glue::EspEvent;
use crate::ike_glue::{ControlPlane, Datagram, IkeEvent, Transmit};
use crate::keylog::IkeCipher;
use crate::spd::PacketSelector;

/// What `proposals = ["default"]` means here.
pub const DEFAULT_IKE_PROPOSALS: &str =
    "aes256gcm16-prfsha256-x25519, aes128gcm16-prfsha256-x25519";
/// What `esp_proposals = ["default"]` means here.
pub const DEFAULT_ESP_PROPOSALS: &str = "aes256gcm16, aes128gcm16";

/// The IKEv2 endpoint behind the run loop.
pub struct Ike {
    ep: Endpoint<RustCrypto>,
    peers: Vec<(Arc<PeerConfig>, SocketAddr, SocketAddr, bool)>,
    handles: Vec<(IkeSaHandle, String)>,
}

impl std::fmt::Debug for Ike {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ike")
            .field("peers", &self.peers.len())
            .field("handles", &self.handles)
            .finish_non_exhaustive()
    }
}

fn proposals(
    p: ProtocolId,
    list: &[String],
    default: &str,
    key: &str,
) -> anyhow::Result<ike::config::ProposalList> {
    let text = if list.iter().any(|s| s == "default") {
        default.to_string()
    } else {
        list.join(",")
    };
    parse_proposals(p, &text).map_err(|e| anyhow::anyhow!("{key}: {e}"))
}

fn peer_config(config: &Config, name: &str, c: &Connection) -> anyhow::Result<PeerConfig> {
    let local_ip = *c
        .local_addrs
        .first()
        .with_context(|| format!("connections.{name}.local_addrs: needed to use IKE"))?;
    let remote_ip = c.remote_addrs[0];
    let id = |s: &Option<String>, ip, key: &str| -> anyhow::Result<(Identity, String)> {
        match s {
            Some(s) => Ok((
                parse_identity(s).map_err(|e| anyhow::anyhow!("{key}: {e}"))?,
                s.clone(),
            )),
            None => Ok((identity_from_ip(ip), ip.to_string())),
        }
    };
    let (local_id, local_txt) = id(
        &c.local.id,
        local_ip,
        &format!("connections.{name}.local.id"),
    )?;
    let (remote_id, remote_txt) = id(
        &c.remote.id,
        remote_ip,
        &format!("connections.{name}.remote.id"),
    )?;
    // strongSwan's rule, simplified: a secret listing the remote or local identity, else a
    // secret without identities.
    let secret = config
        .secrets
        .values()
        .find(|s| s.ids.iter().any(|i| *i == remote_txt || *i == local_txt))
        .or_else(|| config.secrets.values().find(|s| s.ids.is_empty()))
        .and_then(|s| s.bytes())
        .with_context(|| {
            format!("connections.{name}: no secret for {local_txt} or {remote_txt}")
        })?;
    if !c.encap {
        tracing::info!(
            connection = name,
            "ipsec-peer only sends ESP in UDP: forcing encap"
        );
    }
    let mut children = Vec::new();
    for (cn, ch) in &c.children {
        let mut cc = ChildConfig::new(
            cn,
            ch.local_ts.clone(),
            ch.remote_ts.clone(),
            proposals(
                ProtocolId::ESP,
                &ch.esp_proposals,
                DEFAULT_ESP_PROPOSALS,
                &format!("connections.{name}.children.{cn}.esp_proposals"),
            )?,
        );
        cc.mode = ch.mode;
        cc.rekey_time = Some(ch.rekey_time);
        cc.life_time = Some(ch.life_time);
        children.push(cc);
    }
    if children.is_empty() {
        bail!("connections.{name}: no children");
    }
    let (rekey_time, life_time) = c.ike_lifetimes();
    Ok(PeerConfig {
        name: name.to_string(),
        local_id,
        remote_id: Some(remote_id),
        psk: secret.clone(),
        remote_addrs: c.remote_addrs.clone(),
        ike_proposals: proposals(
            ProtocolId::IKE,
            &c.proposals,
            DEFAULT_IKE_PROPOSALS,
            &format!("connections.{name}.proposals"),
        )?,
        force_encap: true,
        dpd_delay: c.dpd_delay.filter(|d| !d.is_zero()),
        initial_contact: true,
        rekey_time,
        life_time,
        children,
    })
}

impl Ike {
    /// Builds the endpoint for every connection of `config`.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let mut peers = Vec::new();
        for (name, c) in &config.connections {
            let pc = Arc::new(peer_config(config, name, c)?);
            let local = SocketAddr::new(c.local_addrs[0], c.local_port);
            let remote = SocketAddr::new(c.remote_addrs[0], c.remote_port);
            let start = c
                .children
                .values()
                .any(|ch| ch.start_action == StartAction::Start);
            peers.push((pc, local, remote, start));
        }
        let ec = EndpointConfig {
            peers: peers.iter().map(|p| p.0.clone()).collect(),
            ..EndpointConfig::default()
        };
        Ok(Self {
            ep: Endpoint::new(Arc::new(ec), Arc::new(RustCrypto::new())),
            peers,
            handles: Vec::new(),
        })
    }

    /// The IKE SA's keys in the form the key log writes (`ikev2_decryption_table`).
    fn keylog_keys(&self, sa: IkeSaHandle) -> Option<crate::keylog::IkeSaKeys> {
        let (spi_i, spi_r, k) = self.ep.ike_sa_keys(sa)?;
        let cipher = match k.suite.encr {
            ike::proposal::Encr::Aead(a) => IkeCipher::Aead(a),
            ike::proposal::Encr::AesCbc { .. } => IkeCipher::AesCbc {
                key_len: k.suite.encr.key_len(),
                integ: k.suite.integ?,
            },
        };
        Some(crate::keylog::IkeSaKeys {
            spi_i,
            spi_r,
            cipher,
            sk_ei: k.sk_ei.clone(),
            sk_er: k.sk_er.clone(),
            sk_ai: k.sk_ai.clone(),
            sk_ar: k.sk_ar.clone(),
        })
    }

    fn name_of(&self, sa: IkeSaHandle) -> String {
        self.handles
            .iter()
            .find(|(h, _)| *h == sa)
            .map_or_else(|| format!("#{}", sa.0), |(_, n)| n.clone())
    }
}

impl ControlPlane for Ike {
    fn start(&mut self, now: Instant, _config: &Config) {
        for (pc, local, remote, start) in self.peers.clone() {
            if !start {
                tracing::info!(connection = %pc.name, "loaded; waiting for the peer");
                continue;
            }
            match self.ep.connect(now, pc.clone(), local, remote) {
                Ok(h) => {
                    tracing::info!(connection = %pc.name, %local, %remote, "initiating");
                    self.handles.push((h, pc.name.clone()));
                }
                Err(e) => tracing::error!(connection = %pc.name, error = %e, "cannot initiate"),
            }
        }
    }

    fn handle(&mut self, now: Instant, d: Datagram<'_>) {
        self.ep.handle(
            now,
            ike::Datagram {
                local: d.local,
                remote: d.remote,
                payload: d.payload,
            },
        );
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.ep.poll_transmit(now, buf).map(|t| Transmit {
            local: t.local,
            remote: t.remote,
        })
    }

    fn poll_event(&mut self) -> Option<IkeEvent> {
        loop {
            match self.ep.poll_event()? {
                Event::IkeSaEstablished {
                    sa,
                    peer,
                    local,
                    remote,
                    nat,
                    suite,
                    ..
                } => {
                    tracing::info!(connection = %peer, %local, %remote, ?nat, %suite, "IKE SA established");
                    if !self.handles.iter().any(|(h, _)| *h == sa) {
                        self.handles.push((sa, peer.clone()));
                    }
                    let keys = self.keylog_keys(sa);
                    return Some(IkeEvent::IkeSaEstablished { name: peer, keys });
                }
                Event::ChildSaEstablished(info) => {
                    tracing::info!(
                        child = %info.name,
                        suite = %info.suite,
                        ts_local = ?info.ts_local,
                        ts_remote = ?info.ts_remote,
                        "Child SA established"
                    );
                    let info = *info;
                    return Some(IkeEvent::ChildSaEstablished {
                        name: info.name,
                        inbound: Box::new(info.inbound),
                        outbound: Box::new(info.outbound),
                    });
                }
                Event::ChildSaInboundReady { name, inbound, .. } => {
                    tracing::info!(child = %name, spi = %inbound.spi, "rekeyed Child SA: inbound ready");
                    return Some(IkeEvent::ChildSaInboundReady { name, inbound });
                }
                Event::ChildSaDeleted {
                    inbound_spi,
                    outbound_spi,
                    keep_inbound,
                    ..
                } => {
                    return Some(IkeEvent::ChildSaDeleted {
                        inbound_spi: (!keep_inbound).then_some(inbound_spi),
                        outbound_spi: Some(outbound_spi),
                    });
                }
                Event::ChildSaInboundExpired { inbound_spi, .. } => {
                    return Some(IkeEvent::ChildSaDeleted {
                        inbound_spi: Some(inbound_spi),
                        outbound_spi: None,
                    });
                }
                Event::IkeSaRekeyed { old, new } => {
                    let name = self.name_of(old);
                    for h in &mut self.handles {
                        if h.0 == old {
                            h.0 = new;
                        }
                    }
                    let keys = self.keylog_keys(new);
                    return Some(IkeEvent::IkeSaRekeyed { name, keys });
                }
                Event::IkeSaClosed { sa, reason } => {
                    let name = self.name_of(sa);
                    self.handles.retain(|(h, _)| *h != sa);
                    return Some(IkeEvent::IkeSaClosed {
                        name,
                        reason: format!("{reason:?}"),
                    });
                }
                other => tracing::warn!(event = ?other, "IKE event"),
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
    }

    fn handle_esp_event(&mut self, now: Instant, ev: &EspEvent) {
        let (spi, hard) = match *ev {
            EspEvent::SoftLifetime { spi, .. } | EspEvent::SeqNearExhaustion { spi, .. } => {
                (spi, false)
            }
            EspEvent::HardLifetime { spi, .. } | EspEvent::SeqExhausted { spi, .. } => (spi, true),
            _ => return,
        };
        if let Err(e) = self.ep.handle_esp_event(now, spi, hard) {
            tracing::debug!(error = %e, %spi, "ESP event not for a Child SA");
        }
    }

    fn acquire(&mut self, _now: Instant, _packet: &PacketSelector) {}

    fn close_all(&mut self, now: Instant) {
        let sas: Vec<IkeSaHandle> = self.ep.ike_sas().collect();
        for sa in sas {
            if let Err(e) = self.ep.close(now, sa) {
                tracing::debug!(error = %e, "close");
            }
        }
    }
}

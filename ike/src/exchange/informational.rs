//! INFORMATIONAL (RFC 7296 §1.4): Delete of Child and IKE SAs in both directions
//! (§1.4.1), liveness checks (empty INFORMATIONAL, §2.4) and status notifies, of which
//! unknown ones are ignored (§3.10.1).
//!
//! Rekeying (§2.8) ends here: a Child SA made by the peer's rekey starts sending when the
//! Child SA it replaces is deleted (the peer only deletes it once it has the new one), and
//! a replaced IKE SA ends with its Delete, silently: the caller was told by
//! [`crate::Event::IkeSaRekeyed`].

use std::time::Instant;

use ipsec_core::{CryptoProvider, Spi};
use tracing::info;

use crate::endpoint::Endpoint;
use crate::event::{CloseReason, Event};
use crate::ike_sa::{IkeSa, IkeState, Request};
use crate::message::header::IkeHeader;
use crate::message::{DeletePayload, Payload, ProtocolId};

impl<P: CryptoProvider> Endpoint<P> {
    /// The payloads of one of our INFORMATIONAL requests; `None` if it became moot.
    pub(crate) fn informational_payloads(
        &self,
        sa: &IkeSa<P>,
        req: &Request,
    ) -> Option<Vec<Payload>> {
        match req {
            Request::Dpd => Some(Vec::new()),
            Request::DeleteIke => Some(vec![Payload::Delete(DeletePayload {
                protocol: ProtocolId::IKE,
                spis: vec![],
            })]),
            Request::DeleteChildren(ids) => {
                let spis: Vec<Spi> = ids
                    .iter()
                    .filter_map(|id| sa.child(*id))
                    .map(|c| c.inbound_spi)
                    .collect();
                (!spis.is_empty()).then(|| {
                    vec![Payload::Delete(DeletePayload {
                        protocol: ProtocolId::ESP,
                        spis,
                    })]
                })
            }
            Request::Init | Request::Auth(_) | Request::CreateChild(_) | Request::RekeyIke => None,
        }
    }

    /// Removes Child SAs and reports them. A Child SA that replaces a removed one and
    /// waits to be used (made by the peer's rekey) is activated first (§2.8).
    pub(crate) fn remove_children(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        keep: impl Fn(&crate::ike_sa::ChildSa) -> bool,
    ) {
        let (gone, kept): (Vec<_>, Vec<_>) = sa.children.drain(..).partition(|c| !keep(c));
        sa.children = kept;
        for c in &gone {
            let Some(next) = c.successor else { continue };
            let handle = sa.handle;
            if let Some(n) = sa.child_mut(next)
                && !n.redundant
                && let Some(mut info) = n.pending.take()
            {
                info.ike_sa = handle;
                info!(
                    sa = handle.0,
                    child = next.0,
                    replaces = c.id.0,
                    "rekeyed Child SA in use"
                );
                self.push_event(Event::ChildSaEstablished(info));
            }
        }
        for c in gone {
            if !c.reported {
                continue;
            }
            info!(sa = sa.handle.0, child = c.id.0, spi_in = %c.inbound_spi, spi_out = %c.outbound_spi, "Child SA deleted");
            let grace = self.config.rekeyed_inbound_grace;
            let keep_inbound = c.successor.is_some() && !grace.is_zero();
            self.push_event(Event::ChildSaDeleted {
                ike_sa: sa.handle,
                id: c.id,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
                keep_inbound,
            });
            if keep_inbound {
                self.inbound_expiries.push_back((
                    now + grace,
                    Event::ChildSaInboundExpired {
                        ike_sa: sa.handle,
                        id: c.id,
                        inbound_spi: c.inbound_spi,
                    },
                ));
            }
        }
    }

    /// The peer's INFORMATIONAL request.
    pub(crate) fn handle_informational_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        header: &IkeHeader,
        payloads: &[Payload],
    ) {
        let deletes: Vec<&DeletePayload> = payloads
            .iter()
            .filter_map(|p| {
                if let Payload::Delete(d) = p {
                    Some(d)
                } else {
                    None
                }
            })
            .collect();
        if deletes.iter().any(|d| d.protocol == ProtocolId::IKE) {
            // §1.4.1: answer with an empty INFORMATIONAL, then the IKE SA and its children
            // are gone.
            self.respond(sa, header, Vec::new());
            // §2.25.2: deleted while our rekey of it is in flight, after we answered the
            // peer's rekey: the peer's new IKE SA is the survivor.
            let answered = sa.outstanding.as_ref().and_then(|o| {
                matches!(o.request, Request::RekeyIke)
                    .then(|| o.create.as_ref()?.peer.as_ref()?.ike)
                    .flatten()
            });
            if let Some(new) = answered
                && sa.state == IkeState::Established
            {
                self.move_to(now, sa, new);
            }
            if sa.state == IkeState::Rekeyed {
                info!(sa = sa.handle.0, "replaced IKE SA deleted by peer");
                sa.announced = false;
                return self.retire(sa, CloseReason::Rekeyed);
            }
            info!(sa = sa.handle.0, "IKE SA deleted by peer");
            return self.retire(sa, CloseReason::DeletedByPeer);
        }
        // The peer names its inbound SPIs: our outbound ones. We answer with our inbound
        // SPIs of the same Child SAs, except those we are deleting ourselves (§1.4.1).
        let ours_pending: Vec<_> = match sa.outstanding.as_ref().map(|o| &o.request) {
            Some(Request::DeleteChildren(ids)) => ids.clone(),
            _ => Vec::new(),
        };
        let named: Vec<Spi> = deletes
            .iter()
            .filter(|d| d.protocol == ProtocolId::ESP)
            .flat_map(|d| d.spis.iter().copied())
            .collect();
        let answer: Vec<Spi> = sa
            .children
            .iter()
            .filter(|c| named.contains(&c.outbound_spi) && !ours_pending.contains(&c.id))
            .map(|c| c.inbound_spi)
            .collect();
        // A Delete may overtake the CREATE_CHILD_SA response that makes the SA it names:
        // remember such SPIs so that the late SA is not set up.
        for spi in &named {
            if !sa.children.iter().any(|c| c.outbound_spi == *spi) {
                if sa.deleted_unknown.len() >= 16 {
                    sa.deleted_unknown.pop_front();
                }
                sa.deleted_unknown.push_back(*spi);
            }
        }
        self.remove_children(now, sa, |c| !named.contains(&c.outbound_spi));
        let out = if answer.is_empty() {
            Vec::new()
        } else {
            vec![Payload::Delete(DeletePayload {
                protocol: ProtocolId::ESP,
                spis: answer,
            })]
        };
        self.respond(sa, header, out);
    }

    /// The response to our INFORMATIONAL request.
    pub(crate) fn handle_informational_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa<P>,
        req: Request,
        _payloads: &[Payload],
    ) {
        match req {
            Request::DeleteIke if sa.state == IkeState::Rekeyed => {
                info!(sa = sa.handle.0, "replaced IKE SA deleted");
                sa.announced = false;
                self.retire(sa, CloseReason::Rekeyed)
            }
            Request::DeleteIke => {
                info!(sa = sa.handle.0, "IKE SA deleted");
                let reason = sa.closing.take().unwrap_or(CloseReason::LocallyClosed);
                self.retire(sa, reason)
            }
            Request::DeleteChildren(ids) => self.remove_children(now, sa, |c| !ids.contains(&c.id)),
            _ => {}
        }
    }
}

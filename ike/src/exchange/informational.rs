//! INFORMATIONAL (RFC 7296 §1.4): Delete of Child and IKE SAs in both directions
//! (§1.4.1), liveness checks (empty INFORMATIONAL, §2.4) and status notifies, of which
//! unknown ones are ignored (§3.10.1).

use std::time::Instant;

use ipsec_core::{CryptoProvider, Spi};
use tracing::info;

use crate::endpoint::Endpoint;
use crate::event::{CloseReason, Event};
use crate::ike_sa::{IkeSa, Request};
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
            Request::Init | Request::Auth(_) => None,
        }
    }

    /// Removes Child SAs and reports them.
    fn remove_children(
        &mut self,
        sa: &mut IkeSa<P>,
        keep: impl Fn(&crate::ike_sa::ChildSa) -> bool,
    ) {
        let (gone, kept): (Vec<_>, Vec<_>) = sa.children.drain(..).partition(|c| !keep(c));
        sa.children = kept;
        for c in gone {
            info!(sa = sa.handle.0, child = c.id.0, spi_in = %c.inbound_spi, spi_out = %c.outbound_spi, "Child SA deleted");
            self.push_event(Event::ChildSaDeleted {
                ike_sa: sa.handle,
                id: c.id,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
            });
        }
    }

    /// The peer's INFORMATIONAL request.
    pub(crate) fn handle_informational_request(
        &mut self,
        _now: Instant,
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
        self.remove_children(sa, |c| !named.contains(&c.outbound_spi));
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
        _now: Instant,
        sa: &mut IkeSa<P>,
        req: Request,
        _payloads: &[Payload],
    ) {
        match req {
            Request::DeleteIke => {
                info!(sa = sa.handle.0, "IKE SA deleted");
                self.retire(sa, CloseReason::LocallyClosed)
            }
            Request::DeleteChildren(ids) => self.remove_children(sa, |c| !ids.contains(&c.id)),
            _ => {}
        }
    }
}

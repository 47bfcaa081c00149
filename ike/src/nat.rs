//! NAT detection (RFC 7296 §2.23).
//!
//! Each side sends NAT_DETECTION_SOURCE_IP (a hash of the address and port it sends from) and
//! NAT_DETECTION_DESTINATION_IP (a hash of the address and port it sends to) in IKE_SA_INIT.
//! The receiver recomputes both over the addresses it actually sees: a source mismatch means
//! the peer is behind a NAT, a destination mismatch means we are. The hash is
//! SHA-1(SPIi | SPIr | IP address | port), with SPIr zero in the request.

use std::net::{IpAddr, SocketAddr};

use ipsec_core::IkeSpi;
use sha1::{Digest, Sha1};

/// Length of a NAT detection hash (SHA-1).
pub const NAT_HASH_LEN: usize = 20;

/// SHA-1(SPIi | SPIr | IP | port) as carried in NAT_DETECTION_*_IP notifies.
pub fn nat_detection_hash(spi_i: IkeSpi, spi_r: IkeSpi, addr: SocketAddr) -> [u8; NAT_HASH_LEN] {
    let mut h = Sha1::new();
    h.update(spi_i.0);
    h.update(spi_r.0);
    match addr.ip() {
        IpAddr::V4(a) => h.update(a.octets()),
        IpAddr::V6(a) => h.update(a.octets()),
    }
    h.update(addr.port().to_be_bytes());
    h.finalize().into()
}

/// What NAT detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatStatus {
    /// Our address is translated (the peer's DESTINATION hash did not match what we sent to).
    pub local_behind_nat: bool,
    /// The peer's address is translated (its SOURCE hash did not match what we received from).
    pub remote_behind_nat: bool,
}

impl NatStatus {
    /// Any NAT on the path: UDP encapsulation is needed (RFC 7296 §2.23, RFC 3948).
    pub fn any(self) -> bool {
        self.local_behind_nat || self.remote_behind_nat
    }
}

/// Evaluates received NAT detection notifies.
///
/// `local` and `remote` are the addresses of the datagram as received; `source_hashes` are
/// the peer's NAT_DETECTION_SOURCE_IP values (several are allowed when a host has several
/// addresses), `destination_hash` its NAT_DETECTION_DESTINATION_IP. Returns `None` when the
/// peer sent no NAT detection at all (then no NAT-T is done).
pub fn evaluate(
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    local: SocketAddr,
    remote: SocketAddr,
    source_hashes: &[&[u8]],
    destination_hash: Option<&[u8]>,
) -> Option<NatStatus> {
    if source_hashes.is_empty() && destination_hash.is_none() {
        return None;
    }
    let expect_src = nat_detection_hash(spi_i, spi_r, remote);
    let expect_dst = nat_detection_hash(spi_i, spi_r, local);
    Some(NatStatus {
        remote_behind_nat: !source_hashes.contains(&expect_src.as_slice()),
        local_behind_nat: destination_hash != Some(expect_dst.as_slice()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_side() {
        let (i, r) = (IkeSpi([1; 8]), IkeSpi::ZERO);
        let a: SocketAddr = "[fd00::1]:500".parse().unwrap();
        let b: SocketAddr = "[fd00::2]:500".parse().unwrap();
        let nat: SocketAddr = "[2001:db8::9]:40001".parse().unwrap();
        // Initiator a sends SOURCE=hash(a), DESTINATION=hash(b).
        let (src, dst) = (nat_detection_hash(i, r, a), nat_detection_hash(i, r, b));
        // Without NAT, b sees the datagram from a.
        assert_eq!(
            evaluate(i, r, b, a, &[&src], Some(&dst)),
            Some(NatStatus::default())
        );
        // Behind a NAT, b sees it from `nat`: the initiator is behind a NAT.
        let s = evaluate(i, r, b, nat, &[&src], Some(&dst)).unwrap();
        assert!(s.remote_behind_nat && !s.local_behind_nat && s.any());
        assert_eq!(evaluate(i, r, b, a, &[], None), None);
        assert_ne!(
            nat_detection_hash(i, IkeSpi([2; 8]), a),
            src,
            "SPIr is hashed"
        );
    }
}

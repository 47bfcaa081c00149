//! Demultiplexing UDP port 4500 payloads (RFC 3948 §2, RFC 7296 §2.23).
//!
//! On port 4500 three things share one socket: IKE messages behind a four-octet zero
//! "non-ESP marker", NAT keepalives (a single 0xFF octet, RFC 3948 §2.3), and ESP, whose
//! first four octets are a nonzero SPI.

/// The non-ESP marker that precedes IKE messages on port 4500 (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The NAT keepalive payload (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: u8 = 0xff;
/// The IKE NAT-T port (RFC 7296 §2.23).
pub const NATT_PORT: u16 = 4500;
/// The IKE port (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;

/// What a UDP-4500 payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpPayload<'a> {
    /// A NAT keepalive; drop it.
    NatKeepalive,
    /// An IKE message, with the non-ESP marker removed.
    Ike(&'a [u8]),
    /// An ESP packet (starting with its SPI).
    Esp(&'a [u8]),
    /// Nothing valid: too short to be ESP, or a marker with nothing behind it.
    Invalid,
}

/// Classifies a payload received on UDP port 4500.
///
/// ESP needs at least the SPI and sequence number (8 octets); a shorter payload with a
/// nonzero first word is [`UdpPayload::Invalid`].
pub fn classify_udp_4500(payload: &[u8]) -> UdpPayload<'_> {
    match payload {
        [NAT_KEEPALIVE] => UdpPayload::NatKeepalive,
        [0, 0, 0, 0, rest @ ..] if !rest.is_empty() => UdpPayload::Ike(rest),
        [0, 0, 0, 0, ..] => UdpPayload::Invalid,
        p if p.len() >= 8 => UdpPayload::Esp(p),
        _ => UdpPayload::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind() {
        assert_eq!(classify_udp_4500(&[0xff]), UdpPayload::NatKeepalive);
        assert_eq!(
            classify_udp_4500(&[0, 0, 0, 0, 1, 2]),
            UdpPayload::Ike(&[1, 2])
        );
        assert_eq!(classify_udp_4500(&[0, 0, 0, 0]), UdpPayload::Invalid);
        let esp = [0, 0, 1, 0, 0, 0, 0, 1, 0xaa];
        assert_eq!(classify_udp_4500(&esp), UdpPayload::Esp(&esp));
        assert_eq!(classify_udp_4500(&[0, 0, 1, 0, 0]), UdpPayload::Invalid);
        assert_eq!(classify_udp_4500(&[]), UdpPayload::Invalid);
        assert_eq!(classify_udp_4500(&[0xff, 0xff]), UdpPayload::Invalid);
    }
}

//! Encode → decode → equal, and decode → encode → identical bytes, for every payload type.

use proptest::prelude::*;

use super::strategies;
use crate::message::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_round_trip(m in strategies::message()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), m.header.length as usize);
        let d = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&d, &m);
        prop_assert_eq!(d.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn each_payload_alone_round_trips(p in strategies::clear_payload(), h in strategies::header()) {
        let m = Message::new(h, vec![p]).unwrap();
        let bytes = m.to_bytes().unwrap();
        let d = Message::decode(&bytes).unwrap();
        prop_assert_eq!(d.to_bytes().unwrap(), bytes);
        prop_assert_eq!(d, m);
    }

    /// Arbitrary bytes behind a valid header never panic the decoder.
    #[test]
    fn decode_arbitrary_bodies_never_panics(
        h in strategies::header(),
        first in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = Vec::new();
        let mut h = h;
        h.length = (28 + body.len()) as u32;
        h.write(PayloadType(first), h.length, &mut bytes);
        bytes.extend_from_slice(&body);
        if let Ok(m) = Message::decode(&bytes) {
            // Whatever decodes must re-encode (possibly canonicalised) and decode the same,
            // except an SA payload all of whose proposals were dropped as not understood.
            match m.to_bytes() {
                Ok(again) => prop_assert_eq!(Message::decode(&again).unwrap().payloads, m.payloads),
                Err(e) => prop_assert_eq!(e, EncodeError::InvalidValue { what: "SA payload without proposals" }),
            }
        }
    }

    /// Mutating one octet of a valid message never panics, and every error has a Display.
    #[test]
    fn mutated_messages_never_panic(
        m in strategies::message(),
        pos in any::<prop::sample::Index>(),
        val in any::<u8>(),
    ) {
        let mut bytes = m.to_bytes().unwrap();
        let i = pos.index(bytes.len());
        bytes[i] = val;
        match Message::decode(&bytes) {
            Ok(d) => { let _ = d.to_bytes(); }
            Err(e) => { prop_assert!(!e.to_string().is_empty()); }
        }
    }

    /// Every strict prefix is rejected, whether or not the header length is adjusted.
    #[test]
    fn every_truncation_is_rejected(m in strategies::message()) {
        let bytes = m.to_bytes().unwrap();
        for n in 0..bytes.len() {
            prop_assert!(Message::decode(&bytes[..n]).is_err());
            if n >= IKE_HEADER_LEN && !m.payloads.is_empty() {
                let mut t = bytes[..n].to_vec();
                t[24..28].copy_from_slice(&(n as u32).to_be_bytes());
                prop_assert!(Message::decode(&t).is_err(), "prefix {} of {} accepted", n, bytes.len());
            }
        }
    }
}

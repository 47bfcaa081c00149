//! Configuration-string parsers of the `ike` crate: proposal strings (strongSwan syntax)
//! and identities.
#![allow(dead_code)]

use ike::config::{display_identity, parse_identity};
use ike::message::{Identification, ProtocolId};
use ike::proposal::{ProposalConfig, display_proposals, parse_proposals};

/// First byte: 0 IKE proposal(s), 1 ESP proposal(s), 2 identity; the rest is the text.
pub fn check_strings(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    match sel % 3 {
        0 => proposals(ProtocolId::IKE, s),
        1 => proposals(ProtocolId::ESP, s),
        _ => identity(s),
    }
}

fn proposals(protocol: ProtocolId, s: &str) {
    if let Ok(p) = ProposalConfig::parse(protocol, s) {
        let shown = p.to_string();
        let back = ProposalConfig::parse(protocol, &shown)
            .unwrap_or_else(|e| panic!("{s:?} displays as {shown:?}, which does not parse: {e}"));
        assert_eq!(back, p, "{s:?} displays as {shown:?}");
        assert_eq!(back.to_string(), shown, "display is not canonical");
        // The wire proposal carries every configured algorithm.
        let wire = p.to_proposal(1, &[]);
        assert!(wire.transforms.len() >= p.encr().len() + p.integ().len());
    }
    if let Ok(list) = parse_proposals(protocol, s) {
        let shown = display_proposals(&list);
        let back = parse_proposals(protocol, &shown)
            .unwrap_or_else(|e| panic!("{s:?} displays as {shown:?}, which does not parse: {e}"));
        assert_eq!(back, list, "{s:?} displays as {shown:?}");
    }
}

fn identity(s: &str) {
    let Ok(id) = parse_identity(s) else {
        return;
    };
    let shown = display_identity(&id);
    // Addresses and KEY_IDs have one spelling; FQDN and RFC822 names may look like an
    // address or like each other once the '@' prefix is gone, so only they may differ.
    if matches!(
        id,
        Identification::Ipv4(_) | Identification::Ipv6(_) | Identification::KeyId(_)
    ) {
        assert_eq!(
            parse_identity(&shown).as_ref(),
            Ok(&id),
            "{s:?} shown as {shown:?}"
        );
    }
}

/// Seeds: the proposal strings and identities used around the code base.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let ike = [
        "aes256gcm16-prfsha256-x25519",
        "aes128-sha256-modp2048",
        "aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048, chacha20poly1305-prfsha512-ecp256",
        "aes256-aes128-sha512-sha256-prfsha384-ecp256-x25519",
    ];
    let esp = [
        "aes256gcm16",
        "aes128-sha256-esn-noesn",
        "chacha20poly1305-x25519-none",
        "aes128gcm16-aes256gcm16-esn, aes256-sha384-modp2048",
    ];
    let ids = [
        "10.0.0.1",
        "fd00::2",
        "@vpn.example",
        "u@x.example",
        "@#00ff",
        "gw.example",
    ];
    for (n, s) in ike.iter().enumerate() {
        out.push((format!("ike-{n}"), [&[0u8][..], s.as_bytes()].concat()));
    }
    for (n, s) in esp.iter().enumerate() {
        out.push((format!("esp-{n}"), [&[1u8][..], s.as_bytes()].concat()));
    }
    for (n, s) in ids.iter().enumerate() {
        out.push((format!("id-{n}"), [&[2u8][..], s.as_bytes()].concat()));
    }
    out
}

//! Known-answer and validation tests of the key exchange methods (RFC 7296 §3.4):
//! X25519 (RFC 7748 §5.2, §6.1; Wycheproof), ECP-256 (RFC 5903 §8.1; Wycheproof) and
//! MODP-2048 (RFC 3526 §3; answers computed independently with Python's `pow`).
//!
//! Fixed private values reach the key exchange through its random source: the test closure
//! returns the private bytes when the key exchange draws its private value.

use ipsec_core::crypto::kex::{self, public_value_len};
use ipsec_core::crypto::{CryptoError, CryptoProvider, KeyExchange};
use ipsec_core::transform::KeId;
use ipsec_core::{RustCrypto, SecretBytes};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Starts `group` with `private` as the bytes drawn from the random source.
fn start_fixed(group: KeId, private: &[u8]) -> Result<Box<dyn KeyExchange>, CryptoError> {
    let mut source = |out: &mut [u8]| {
        out.copy_from_slice(private);
        Ok(())
    };
    kex::start(group, &mut source)
}

fn complete_fixed(group: KeId, private: &[u8], peer: &[u8]) -> Result<SecretBytes, CryptoError> {
    start_fixed(group, private)?.complete(peer)
}

// ---------------------------------------------------------------- X25519 (group 31)

/// RFC 7748 §5.2: the two single-step X25519 vectors (scalar, u-coordinate, output).
#[test]
fn x25519_rfc7748_section_5_2() {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (scalar, u, out) in cases {
        let shared = complete_fixed(KeId::CURVE25519, &hex(scalar), &hex(u)).unwrap();
        assert_eq!(shared.expose(), &hex(out)[..]);
    }
}

/// RFC 7748 §6.1: Alice's and Bob's key pairs and their shared secret.
#[test]
fn x25519_rfc7748_section_6_1() {
    let a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let a_pub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let b = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let b_pub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let k = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

    let alice = start_fixed(KeId::CURVE25519, &a).unwrap();
    let bob = start_fixed(KeId::CURVE25519, &b).unwrap();
    assert_eq!(alice.public_value(), &a_pub[..]);
    assert_eq!(bob.public_value(), &b_pub[..]);
    assert_eq!(alice.complete(&b_pub).unwrap().expose(), &k[..]);
    assert_eq!(bob.complete(&a_pub).unwrap().expose(), &k[..]);
}

#[test]
fn x25519_rejects_low_order_and_wrong_length() {
    let a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    // u = 0 and u = 1 are low-order points: the result is all zeros (RFC 8031 §2.3).
    let mut one = [0u8; 32];
    one[0] = 1;
    for peer in [[0u8; 32], one] {
        assert_eq!(
            complete_fixed(KeId::CURVE25519, &a, &peer).err(),
            Some(CryptoError::InvalidPeerValue)
        );
    }
    for len in [0, 31, 33, 64] {
        assert_eq!(
            complete_fixed(KeId::CURVE25519, &a, &vec![9u8; len]).err(),
            Some(CryptoError::InvalidPeerValue)
        );
    }
}

/// Wycheproof `x25519_test.json`: every valid vector must give the expected secret; an
/// all-zero shared secret (low-order public key) must be rejected; other "acceptable"
/// vectors (non-canonical or twist points) must, if accepted, give the expected secret.
#[test]
fn x25519_wycheproof() {
    use wycheproof::TestResult;
    use wycheproof::xdh::{TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let (mut valid, mut rejected_zero) = (0, 0);
    for group in set.test_groups {
        for t in group.tests {
            let got = complete_fixed(KeId::CURVE25519, &t.private_key, &t.public_key);
            let zero = t.shared_secret.iter().all(|&b| b == 0);
            match (&t.result, got) {
                (_, Err(_)) if zero => rejected_zero += 1,
                (TestResult::Valid, Ok(s)) => {
                    assert_eq!(s.expose(), &t.shared_secret[..], "tc {}", t.tc_id);
                    valid += 1;
                }
                (TestResult::Acceptable, Ok(s)) => {
                    assert!(!zero, "tc {}: zero shared secret accepted", t.tc_id);
                    assert_eq!(s.expose(), &t.shared_secret[..], "tc {}", t.tc_id);
                }
                (TestResult::Acceptable, Err(_)) => {}
                (r, got) => panic!("tc {} ({}): {r:?} but got {got:?}", t.tc_id, t.comment),
            }
        }
    }
    assert!(valid > 200, "only {valid} valid vectors ran");
    assert!(
        rejected_zero > 10,
        "only {rejected_zero} low-order vectors ran"
    );
}

// ---------------------------------------------------------------- ECP-256 (group 19)

const ECP256_I: &str = "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433";
const ECP256_GI: &str = "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180
                         5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3";
const ECP256_R: &str = "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53";
const ECP256_GR: &str = "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63
                         56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB";
const ECP256_GIRX: &str = "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE";

/// RFC 5903 §8.1: the 256-bit random ECP group vector. KE data is x ‖ y (64 octets) and
/// the shared secret is the x coordinate only (RFC 5903 §9).
#[test]
fn ecp256_rfc5903_section_8_1() {
    let init = start_fixed(KeId::ECP_256, &hex(ECP256_I)).unwrap();
    let resp = start_fixed(KeId::ECP_256, &hex(ECP256_R)).unwrap();
    assert_eq!(init.public_value(), &hex(ECP256_GI)[..]);
    assert_eq!(resp.public_value(), &hex(ECP256_GR)[..]);
    let a = init.complete(&hex(ECP256_GR)).unwrap();
    let b = resp.complete(&hex(ECP256_GI)).unwrap();
    assert_eq!(a.expose(), &hex(ECP256_GIRX)[..]);
    assert_eq!(a, b);
}

#[test]
fn ecp256_rejects_bad_points() {
    let i = hex(ECP256_I);
    let mut off_curve = hex(ECP256_GR);
    off_curve[63] ^= 1;
    let with_format_octet = [&[0x04][..], &hex(ECP256_GR)].concat();
    let bad: [&[u8]; 5] = [
        &[0u8; 64], // (0, 0): not on the curve; also how some encode the identity
        &off_curve,
        &with_format_octet, // 65 octets: RFC 5903 §7 has no format octet
        &hex(ECP256_GR)[..32],
        &[],
    ];
    for peer in bad {
        assert_eq!(
            complete_fixed(KeId::ECP_256, &i, peer).err(),
            Some(CryptoError::InvalidPeerValue),
            "{} octets",
            peer.len()
        );
    }
}

/// The private scalar must be in [1, n−1]: an out-of-range draw is drawn again, and a
/// source that only ever returns an invalid scalar is reported as a random failure.
#[test]
fn ecp256_rejection_sampling() {
    assert_eq!(
        start_fixed(KeId::ECP_256, &[0xff; 32]).err(),
        Some(CryptoError::RandomFailure)
    );
    let mut draws = 0;
    let mut source = |out: &mut [u8]| {
        draws += 1;
        out.fill(if draws == 1 { 0xff } else { 0x11 });
        Ok(())
    };
    let kx = kex::start(KeId::ECP_256, &mut source).unwrap();
    assert_eq!(kx.public_value().len(), 64);
    assert_eq!(draws, 2);
}

/// Wycheproof `ecdh_secp256r1_ecpoint_test.json` (public keys as SEC1 points). Uncompressed
/// points are converted to the RFC 5903 form by dropping the 0x04 octet; other encodings
/// cannot be carried in a KE payload, so they only check that the test data is not "valid".
#[test]
fn ecp256_wycheproof() {
    use wycheproof::TestResult;
    use wycheproof::ecdh::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdhSecp256r1Ecpoint).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in set.test_groups {
        for t in group.tests {
            let public: &[u8] = &t.public_key;
            if public.len() != 65 || public[0] != 0x04 {
                assert!(!matches!(t.result, TestResult::Valid), "tc {}", t.tc_id);
                continue;
            }
            // Private keys are big-endian integers, sometimes with a leading zero octet.
            let d: &[u8] = &t.private_key;
            let d = &d[d.len().saturating_sub(32)..];
            let mut private = [0u8; 32];
            private[32 - d.len()..].copy_from_slice(d);
            let got = complete_fixed(KeId::ECP_256, &private, &public[1..]);
            match (&t.result, got) {
                (TestResult::Valid | TestResult::Acceptable, Ok(s)) => {
                    assert_eq!(s.expose(), &t.shared_secret[..], "tc {}", t.tc_id);
                    valid += 1;
                }
                (TestResult::Invalid, Err(e)) => {
                    assert_eq!(e, CryptoError::InvalidPeerValue, "tc {}", t.tc_id);
                    invalid += 1;
                }
                (r, got) => panic!("tc {} ({}): {r:?} but got {got:?}", t.tc_id, t.comment),
            }
        }
    }
    assert!(valid > 300, "only {valid} valid vectors ran");
    assert!(invalid > 10, "only {invalid} invalid vectors ran");
}

// ---------------------------------------------------------------- MODP-2048 (group 14)

const MODP_A: &str = "84d875a377bd6f713a9224309b44ce779088e3f6f2de51bc9d98cc150ca584d7";
const MODP_B: &str = "1d8893ade9340ed61c34c41f4159ae4ee0cf2ccb9cd9a35be1992d45466d7aa9";
const MODP_GA: &str = "
    b04755b236a305d8b22a17506615669aafebb68c0bec0f4616cb4c739021419ce8032e24155c11060851c4c3
    3871740c39f7384dcbd3aa5bb53380dd7ce591cf73684eeb8389da4633d53a6e774d302e9869b71041fa99f9
    30af812f10dad3eb0ebcbd0f43eaf442b8ee3d3751e4779ae17a39309a32eecfd7a71b23bb4eaa512ed2b6a3
    0ed7616688392c160f36e34d1c35c0438bed836e6078446e61da5ea941aac8f0d6161b619f60e174ca873eaa
    b0e9922581b16b91e3c49cbae74f406cc6ea59827997d1c1f6f0b6810153e07872838ff9c47db137a1abd75a
    99218a2deea87a499c5dc89176168b949969f35e85303cad7889e953a5a0e8053b20ee82";
const MODP_GB: &str = "
    62f9a3151ac4515a9f674fb188aaa66df840632835540bb792e1dd19e4235d45a58911ff6ed82ba8857644ea
    996645c2b9e7453affda52317be3369fd56c9ebca6c21d31d1bb05aef91d90f0b13faed4e34345c55fb8838e
    9a8bb6e892d46f3eb5cd9db44468d642f18af1a4fd50adbfdf777b0401e34c3707d2759c9de9070b86c48d4d
    d25f236a9151edc44427f6e4b29c2aed701f61402970417981c411365b58c3d6449eec9985fe7ceccc967b00
    df07440150a23b9a5dd964f3852000f8ef5dece292302210cbf5c1952f1c66a2e5108093a41a665250fedf48
    d7fcf6143e0dd4b911ad014c3fa9cc9df0256f0083b0b31ed816d19aaa4df043f4ed4954";
const MODP_GAB: &str = "
    ba4aed4becbb938deee047fb30cc65380d18fc1b7652ee0508be7ff4694c783a3b3eedb1e8d5f0239b270ebe
    0b5531008cf921479ab91b4224d6b5fa2ee96a43c7e0187f399b15cb44fe3b5e54b1626549e385cdb969d6f8
    51e138f3996d2c7b75c9afb9517924ef283c1b73a98fe505572075089e2c6fc69f2f99c9af633922432c2b73
    613190934e7c58c562f6adebd6f9e643cca03a4e3c389a9b22dce05954236643eca15dd61966cf44b2dcaed2
    24bf2456e5b1fd38e522d9c80ded2f4d9d34ae8e2c1f0be267d79a1bc21a6a4d4864beec3d60dd6dfdc797e7
    e3a33b064c75e2dd525ecac3ea0100eb26c90b744b5fe7cd3f52deac56720218b1e622e0";

/// The RFC 3526 §3 prime, as the boundary for the RFC 6989 §2.1 checks.
const MODP_P: &str = "
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879
    8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B
    0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836
    1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804
    F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6
    955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";

/// Known answer computed outside this code base (Python big integers).
#[test]
fn modp2048_known_answer() {
    let a = start_fixed(KeId::MODP_2048, &hex(MODP_A)).unwrap();
    let b = start_fixed(KeId::MODP_2048, &hex(MODP_B)).unwrap();
    assert_eq!(a.public_value(), &hex(MODP_GA)[..]);
    assert_eq!(b.public_value(), &hex(MODP_GB)[..]);
    let s1 = a.complete(&hex(MODP_GB)).unwrap();
    let s2 = b.complete(&hex(MODP_GA)).unwrap();
    assert_eq!(s1.expose(), &hex(MODP_GAB)[..]);
    assert_eq!(s1, s2);
}

/// (g^a)^411 mod p happens to be below 2^2040: the shared secret keeps its leading zero
/// octet (RFC 7296 §2.14: g^ir is represented as a string of the prime's length).
#[test]
fn modp2048_shared_secret_is_left_padded() {
    let mut x = [0u8; 32];
    x[30..].copy_from_slice(&411u16.to_be_bytes());
    let s = complete_fixed(KeId::MODP_2048, &x, &hex(MODP_GA)).unwrap();
    assert_eq!(s.len(), 256);
    assert_eq!(&s.expose()[..4], &[0x00, 0xc7, 0x12, 0x19]);
}

#[test]
fn modp2048_rejects_peer_values() {
    let p = hex(MODP_P);
    let mut p_minus_1 = p.clone();
    p_minus_1[255] -= 1;
    // p ends in 64 one bits, so p+1 carries into the 9th octet from the end.
    let mut p_plus_1 = p.clone();
    p_plus_1[248..].fill(0);
    p_plus_1[247] += 1;
    let mut one = vec![0u8; 256];
    one[255] = 1;
    let all_ones = vec![0xff; 256];
    let mut long = vec![0u8; 257];
    long[256] = 2;
    let mut two = vec![0u8; 256];
    two[255] = 2;
    let bad: [(&str, &[u8]); 9] = [
        ("0", &[0u8; 256]),
        ("1", &one),
        ("p-1", &p_minus_1),
        ("p", &p),
        ("p+1", &p_plus_1),
        ("2^2048-1", &all_ones),
        ("257 octets", &long),
        ("255 octets", &two[1..]),
        ("empty", &[]),
    ];
    let a = hex(MODP_A);
    for (name, peer) in bad {
        assert_eq!(
            complete_fixed(KeId::MODP_2048, &a, peer).err(),
            Some(CryptoError::InvalidPeerValue),
            "{name}"
        );
    }
    // The boundaries themselves: 2 and p−2 are accepted.
    let mut p_minus_2 = p.clone();
    p_minus_2[255] -= 2;
    for peer in [&two, &p_minus_2] {
        assert_eq!(
            complete_fixed(KeId::MODP_2048, &a, peer).unwrap().len(),
            256
        );
    }
}

// ---------------------------------------------------------------- through the provider

/// Both sides of every supported group agree through `CryptoProvider::key_exchange`.
#[test]
fn provider_groups_agree() {
    let p = RustCrypto::with_seed(99);
    assert_eq!(
        p.supported_groups(),
        &[KeId::CURVE25519, KeId::ECP_256, KeId::MODP_2048]
    );
    for &g in p.supported_groups() {
        let a = p.key_exchange(g).unwrap();
        let b = p.key_exchange(g).unwrap();
        assert_eq!(a.group(), g);
        assert_eq!(Some(a.public_value().len()), public_value_len(g));
        assert_ne!(a.public_value(), b.public_value());
        let (pa, pb) = (a.public_value().to_vec(), b.public_value().to_vec());
        let s1 = a.complete(&pb).unwrap();
        let s2 = b.complete(&pa).unwrap();
        assert_eq!(s1, s2, "{g}");
    }
    assert_eq!(
        p.key_exchange(KeId::MODP_3072).err(),
        Some(CryptoError::Unsupported)
    );
}

//! Key schedule (RFC 7296 §2.13–§2.18) and PSK AUTH (§2.15) tests.
//!
//! Independent references: the RFC 4868 §2.7.1 / RFC 4231 PRF test cases, the NIST CAVS
//! IKEv2 KDF (SHA-256) vectors, Wycheproof HMAC-SHA-256/384/512, and HKDF-Expand (RFC 5869)
//! from the `hkdf` crate, which is prf+ for HMAC PRFs.

use hkdf::Hkdf;
use ike::auth::{
    AuthError, AuthInput, DEFAULT_MIN_PSK_LEN, KEY_PAD, Psk, Signer, psk_auth, psk_auth_raw,
    signed_octets, verify_psk_auth,
};
use ike::keys::{ChildSaKeys, IkeSaKeys, KeyError, prf, prf_plus, skeyseed, skeyseed_rekey};
use ike::message::sa::ProtocolId;
use ike::proposal::{Encr, NegotiatedSuite};
use ipsec_core::crypto::{AeadAlgorithm, CryptoProvider};
use ipsec_core::transform::{IntegId, KeId, PrfId};
use ipsec_core::{EspTransform, IkeSpi, RustCrypto, SecretBytes};
use sha2::{Sha256, Sha384, Sha512};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn secret(s: &str) -> SecretBytes {
    SecretBytes::new(hex(s))
}

const PRFS: [PrfId; 3] = [
    PrfId::HMAC_SHA2_256,
    PrfId::HMAC_SHA2_384,
    PrfId::HMAC_SHA2_512,
];

// ------------------------------------------------------------------ PRF (RFC 4868 §2.7.1)

/// RFC 4868 §2.7.1 PRF test cases 1–4, 6, 7 (the RFC 4231 inputs), for PRF_HMAC_SHA2_256,
/// 384 and 512 through `CryptoProvider::prf` and `keys::prf`.
#[test]
fn prf_rfc4868_test_cases() {
    let long_key = "aa".repeat(131);
    let cases: [(String, Vec<u8>, [&str; 3]); 6] = [
        (
            "0b".repeat(20),
            b"Hi There".to_vec(),
            [
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                 faea9ea9076ede7f4af152e8b2fa9cb6",
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                 daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
            ],
        ),
        (
            "4a656665".into(),
            b"what do ya want for nothing?".to_vec(),
            [
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649",
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ],
        ),
        (
            "aa".repeat(20),
            vec![0xdd; 50],
            [
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
                "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b\
                 2a5ab39dc13814b94e3ab6e101a34f27",
                "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39\
                 bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
            ],
        ),
        (
            "0102030405060708090a0b0c0d0e0f10111213141516171819".into(),
            vec![0xcd; 50],
            [
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
                "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e\
                 6801dd23c4a7d679ccf8a386c674cffb",
                "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db\
                 a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
            ],
        ),
        (
            long_key.clone(),
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            [
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
                 0c2ef6ab4030fe8296248df163f44952",
                "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
                 6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
            ],
        ),
        (
            long_key,
            b"This is a test using a larger than block-size key and a larger than \
              block-size data. The key needs to be hashed before being used by the \
              HMAC algorithm."
                .to_vec(),
            [
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
                "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5\
                 a678cc31e799176d3860e6110c46523e",
                "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944\
                 b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
            ],
        ),
    ];
    let p = RustCrypto::new();
    for (key, data, outs) in &cases {
        for (alg, out) in PRFS.iter().zip(outs) {
            let got = prf(&p, *alg, &hex(key), &[data]).unwrap();
            assert_eq!(got.expose(), &hex(out)[..], "{alg} key {key}");
            // Data given in parts is concatenated.
            let (a, b) = data.split_at(data.len() / 2);
            assert_eq!(prf(&p, *alg, &hex(key), &[a, b]).unwrap(), got);
        }
    }
}

/// Wycheproof HMAC vectors for the three PRF hashes: full-length tags are compared whole,
/// truncated ones on their prefix; "invalid" tags must differ.
#[test]
fn prf_wycheproof_hmac() {
    use wycheproof::TestResult;
    use wycheproof::mac::{TestName, TestSet};
    let p = RustCrypto::new();
    for (name, alg) in [
        (TestName::HmacSha256, PrfId::HMAC_SHA2_256),
        (TestName::HmacSha384, PrfId::HMAC_SHA2_384),
        (TestName::HmacSha512, PrfId::HMAC_SHA2_512),
    ] {
        let set = TestSet::load(name).unwrap();
        let mut n = 0;
        for group in set.test_groups {
            for t in group.tests {
                let full = prf(&p, alg, &t.key, &[&t.msg]).unwrap();
                let same = full.expose().get(..t.tag.len()) == Some(&t.tag[..]);
                match t.result {
                    TestResult::Valid => assert!(same, "{alg} tc {}", t.tc_id),
                    TestResult::Invalid => assert!(!same, "{alg} tc {}", t.tc_id),
                    TestResult::Acceptable => {}
                }
                n += 1;
            }
        }
        assert!(n > 100, "{alg}: {n} vectors");
    }
}

// ------------------------------------------------------------------ prf+ (§2.13)

/// prf+ equals HKDF-Expand (RFC 5869 §2.3) with PRK = K and info = S, for HMAC PRFs: a
/// second, independent implementation, over lengths around block boundaries up to the
/// 255-block limit.
#[test]
fn prf_plus_equals_hkdf_expand() {
    let p = RustCrypto::new();
    let key: Vec<u8> = (0u8..80).collect();
    let seed_a: Vec<u8> = (100u8..150).collect();
    let seed_b = b"|second part of S".to_vec();
    let seed_whole = [seed_a.clone(), seed_b.clone()].concat();
    for alg in PRFS {
        let block = alg.output_len().unwrap();
        for len in [
            0,
            1,
            block - 1,
            block,
            block + 1,
            3 * block + 7,
            255 * block,
        ] {
            let ours = prf_plus(&p, alg, &key, &[&seed_a, &seed_b], len).unwrap();
            let mut theirs = vec![0u8; len];
            match alg {
                PrfId::HMAC_SHA2_256 => Hkdf::<Sha256>::from_prk(&key)
                    .unwrap()
                    .expand(&seed_whole, &mut theirs),
                PrfId::HMAC_SHA2_384 => Hkdf::<Sha384>::from_prk(&key)
                    .unwrap()
                    .expand(&seed_whole, &mut theirs),
                _ => Hkdf::<Sha512>::from_prk(&key)
                    .unwrap()
                    .expand(&seed_whole, &mut theirs),
            }
            .unwrap();
            assert_eq!(ours.expose(), &theirs[..], "{alg} len {len}");
        }
        assert_eq!(
            prf_plus(&p, alg, &key, &[&seed_a], 255 * block + 1).err(),
            Some(KeyError::TooLong {
                requested: 255 * block + 1,
                max: 255 * block
            })
        );
    }
    assert_eq!(
        prf_plus(&p, PrfId::HMAC_SHA1, &key, &[], 20).err(),
        Some(KeyError::UnsupportedPrf(PrfId::HMAC_SHA1))
    );
}

/// prf+ written out by hand from §2.13 for three blocks, using only the provider's PRF.
#[test]
fn prf_plus_follows_section_2_13() {
    let p = RustCrypto::new();
    let (k, s) = (b"key".as_slice(), b"seed".as_slice());
    let t1 = prf(&p, PrfId::HMAC_SHA2_256, k, &[s, &[1]]).unwrap();
    let t2 = prf(&p, PrfId::HMAC_SHA2_256, k, &[t1.expose(), s, &[2]]).unwrap();
    let t3 = prf(&p, PrfId::HMAC_SHA2_256, k, &[t2.expose(), s, &[3]]).unwrap();
    let want = [t1.expose(), t2.expose(), &t3.expose()[..10]].concat();
    let got = prf_plus(&p, PrfId::HMAC_SHA2_256, k, &[s], 74).unwrap();
    assert_eq!(got.expose(), &want[..]);
}

// ------------------------------------------------------------------ NIST CAVS IKEv2 KDF

// NIST CAVS "IKEv2 KDF" SHA-256 vectors (SP 800-135 §4.2 test data).
const CAVS_NI: &str = "3f302be1abcb28e1";
const CAVS_NR: &str = "8c332ee006064c9b";
const CAVS_SPII: &str = "40dac39e1e1a8640";
const CAVS_SPIR: &str = "8619a1cf9a6e4c07";
const CAVS_GIR: &str = "0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29";
const CAVS_GIR_NEW: &str = "25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c";
const CAVS_SKEYSEED: &str = "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe";
const CAVS_DKM: &str = "
    0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ece98aca531188d16041b3
    bb936d2dbb3b4993a6e768a809160de45d0283f273a6cdf6854379e31be72b8d3d1fa990cf9c5b015ca9
    f918a7df6253c958114a09d4e1c19bdcd4db14b29d98db1a74ad405c588662c14a04d0d36aa4ab55e90f
    8986d12d4aad";
const CAVS_SKEYSEED_REKEY: &str =
    "2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398";

fn spi(s: &str) -> IkeSpi {
    IkeSpi(hex(s).try_into().unwrap())
}

#[test]
fn nist_cavs_skeyseed_prf_plus_and_rekey() {
    let p = RustCrypto::new();
    let (ni, nr) = (hex(CAVS_NI), hex(CAVS_NR));
    let seed = skeyseed(&p, PrfId::HMAC_SHA2_256, &ni, &nr, &secret(CAVS_GIR)).unwrap();
    assert_eq!(seed.expose(), &hex(CAVS_SKEYSEED)[..]);

    let dkm = hex(CAVS_DKM);
    assert_eq!(dkm.len(), 132);
    let got = prf_plus(
        &p,
        PrfId::HMAC_SHA2_256,
        seed.expose(),
        &[&ni, &nr, &hex(CAVS_SPII), &hex(CAVS_SPIR)],
        132,
    )
    .unwrap();
    assert_eq!(got.expose(), &dkm[..]);

    // SK_d is the first 32 octets of DKM; the rekey SKEYSEED of §2.18 uses it.
    let sk_d = SecretBytes::from_slice(&dkm[..32]);
    let rekey = skeyseed_rekey(
        &p,
        PrfId::HMAC_SHA2_256,
        &sk_d,
        &secret(CAVS_GIR_NEW),
        &ni,
        &nr,
    )
    .unwrap();
    assert_eq!(rekey.expose(), &hex(CAVS_SKEYSEED_REKEY)[..]);
}

/// NIST CAVS vector with 256-octet nonces.
#[test]
fn nist_cavs_skeyseed_long_nonces() {
    let ni = hex(
        "b1dee62505b47b223bae14ce7a5b757402ad1587511618d09f94950d47f1d8d4ce86aca12
         d78db9854d86019ad735757ae79d8932ac0c7db842c85060150ca875ea5d47e3cfcb2a059
         22ebb7959d49b9797a2289676ee79a1d9a18b790f87e4771ddaf4be3376057a553162f68f
         e429aca73b07234543801ba2122b1bde82251770d05df813cf556a11ca4dc43ffcb85a97d
         bed16e2fda6985e07e31be6364899e63c507c7c616e5eb7765a53560f76772de43918ba07
         badfe85244dcdcd917cb065afb60e3b7e68b54dd94bfc7c31c8b752892781ed3cc4b7f28f
         bc0ab9af908f5ae1f09f893f80100a7b3135993161b51fbba3bbb24b9f88c6147de82cd6f
         0",
    );
    let nr = hex(
        "f0acfef2ad1f7add0eaafda78c1cf1097d9fc91cb04a7c145069ac426fd164cbe661b1dd2
         df0fb84e19512181f0d8ea50b7860845f332757a8e56d2a3b7be436b5718a2d49baa996a4
         616684a208c2d611cd65e605dca6e3d3f116859b4410fe13679696bb2e23c08a40c7e1316
         d54b4c9c0286701c221151b3642cb4112ca1a53e0e597a7e29c634caed86ca3c31973d37b
         4c346134fd6784cd99913feedf3d29d89a0a02a5a750f02f5738109dcc670bb27701fb59f
         78e83b76860c3fec079a1fc8c937ddb58ae7500422b7e49ce63759c65b6bc439381d56bcc
         159edede894b073841036ebfa050a5b3e7c876a3f18def26b1768a263ac66c9d83b680eb5
         e",
    );
    assert_eq!((ni.len(), nr.len()), (256, 256));
    let gir = secret("a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155");
    let seed = skeyseed(&RustCrypto::new(), PrfId::HMAC_SHA2_256, &ni, &nr, &gir).unwrap();
    assert_eq!(
        seed.expose(),
        &hex("750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d")[..]
    );
}

fn ike_suite(encr: Encr, integ: Option<IntegId>, prf: PrfId) -> NegotiatedSuite {
    NegotiatedSuite {
        protocol: ProtocolId::IKE,
        encr,
        integ,
        prf: Some(prf),
        ke: KeId::CURVE25519,
        esn: false,
    }
}

fn esp_suite(encr: Encr, integ: Option<IntegId>) -> NegotiatedSuite {
    NegotiatedSuite {
        protocol: ProtocolId::ESP,
        encr,
        integ,
        prf: None,
        ke: KeId::NONE,
        esn: true,
    }
}

/// The §2.14 split on the NIST DKM: SK_d | SK_ai | SK_ar | SK_ei | SK_er in that order
/// with AES-128-CBC and HMAC-SHA2-256-128 (32 + 32 + 32 + 16 + 16 = 128 ≤ 132 octets).
#[test]
fn ike_sa_keys_split_in_rfc_order() {
    let p = RustCrypto::new();
    let suite = ike_suite(
        Encr::AES128_CBC,
        Some(IntegId::HMAC_SHA2_256_128),
        PrfId::HMAC_SHA2_256,
    );
    let keys = IkeSaKeys::derive(
        &p,
        &suite,
        &secret(CAVS_GIR),
        &hex(CAVS_NI),
        &hex(CAVS_NR),
        spi(CAVS_SPII),
        spi(CAVS_SPIR),
    )
    .unwrap();
    let dkm = hex(CAVS_DKM);
    assert_eq!(keys.sk_d.expose(), &dkm[..32]);
    assert_eq!(keys.sk_ai.expose(), &dkm[32..64]);
    assert_eq!(keys.sk_ar.expose(), &dkm[64..96]);
    assert_eq!(keys.sk_ei.expose(), &dkm[96..112]);
    assert_eq!(keys.sk_er.expose(), &dkm[112..128]);
    assert_eq!(keys.sk_pi.len(), 32);
    assert_eq!(keys.sk_pr.len(), 32);
    let (k, salt) = keys.sk_e_parts(true);
    assert_eq!((k.len(), salt.len()), (16, 0));
    // Debug never shows key bytes.
    let dbg = format!("{keys:?}");
    assert!(dbg.contains("[redacted]"));
    assert!(!dbg.contains("0b137d"), "{dbg}");
    assert!(!dbg.to_lowercase().contains("11, 19, 125"), "{dbg}");
}

#[test]
fn ike_sa_key_lengths_follow_the_suite() {
    let p = RustCrypto::with_seed(3);
    let gir = SecretBytes::from_slice(&[7; 32]);
    let cases = [
        (
            ike_suite(
                Encr::Aead(AeadAlgorithm::Aes256Gcm),
                None,
                PrfId::HMAC_SHA2_384,
            ),
            (48, 0, 36),
        ),
        (
            ike_suite(
                Encr::Aead(AeadAlgorithm::ChaCha20Poly1305),
                None,
                PrfId::HMAC_SHA2_256,
            ),
            (32, 0, 36),
        ),
        (
            ike_suite(
                Encr::Aead(AeadAlgorithm::Aes128Gcm),
                None,
                PrfId::HMAC_SHA2_512,
            ),
            (64, 0, 20),
        ),
        (
            ike_suite(
                Encr::AES256_CBC,
                Some(IntegId::HMAC_SHA2_512_256),
                PrfId::HMAC_SHA2_256,
            ),
            (32, 64, 32),
        ),
        (
            ike_suite(
                Encr::AES192_CBC,
                Some(IntegId::HMAC_SHA2_384_192),
                PrfId::HMAC_SHA2_384,
            ),
            (48, 48, 24),
        ),
    ];
    for (suite, (d, a, e)) in cases {
        let k = IkeSaKeys::derive(
            &p,
            &suite,
            &gir,
            b"ni",
            b"nr",
            IkeSpi([1; 8]),
            IkeSpi([2; 8]),
        )
        .unwrap();
        let lens = [
            k.sk_d.len(),
            k.sk_ai.len(),
            k.sk_ar.len(),
            k.sk_ei.len(),
            k.sk_er.len(),
            k.sk_pi.len(),
            k.sk_pr.len(),
        ];
        assert_eq!(lens, [d, a, a, e, e, d, d], "{suite}");
        assert_ne!(k.sk_ei, k.sk_er);
        assert_ne!(k.sk_pi, k.sk_pr);
        if let Some(alg) = suite.aead() {
            let (key, salt) = k.sk_e_parts(false);
            assert_eq!((key.len(), salt.len()), (alg.key_len(), 4));
        }
    }
    // An IKE suite without a PRF, or CBC without integrity, is refused.
    let mut bad = ike_suite(Encr::AES128_CBC, None, PrfId::HMAC_SHA2_256);
    assert_eq!(
        IkeSaKeys::derive(&p, &bad, &gir, b"n", b"n", IkeSpi([1; 8]), IkeSpi([2; 8])).err(),
        Some(KeyError::IncompleteSuite)
    );
    bad.integ = Some(IntegId::HMAC_SHA2_256_128);
    bad.prf = None;
    assert_eq!(
        IkeSaKeys::derive(&p, &bad, &gir, b"n", b"n", IkeSpi([1; 8]), IkeSpi([2; 8])).err(),
        Some(KeyError::IncompleteSuite)
    );
}

// ------------------------------------------------------------------ full two-sided run

/// Both peers run a real key exchange and derive the IKE SA keys, a Child SA without and
/// with PFS, and a rekeyed IKE SA; everything agrees, and the directions cross (the
/// initiator's outbound is the responder's inbound).
#[test]
fn two_sides_derive_identical_keys() {
    let init_p = RustCrypto::with_seed(1);
    let resp_p = RustCrypto::with_seed(2);
    let suite = ike_suite(
        Encr::Aead(AeadAlgorithm::Aes256Gcm),
        None,
        PrfId::HMAC_SHA2_256,
    );
    let (mut ni, mut nr) = ([0u8; 32], [0u8; 32]);
    init_p.fill_random(&mut ni).unwrap();
    resp_p.fill_random(&mut nr).unwrap();
    let (spi_i, spi_r) = (IkeSpi([0x11; 8]), IkeSpi([0x22; 8]));

    let ke_i = init_p.key_exchange(KeId::CURVE25519).unwrap();
    let ke_r = resp_p.key_exchange(KeId::CURVE25519).unwrap();
    let (pub_i, pub_r) = (ke_i.public_value().to_vec(), ke_r.public_value().to_vec());
    let gir_i = ke_i.complete(&pub_r).unwrap();
    let gir_r = ke_r.complete(&pub_i).unwrap();

    let ki = IkeSaKeys::derive(&init_p, &suite, &gir_i, &ni, &nr, spi_i, spi_r).unwrap();
    let kr = IkeSaKeys::derive(&resp_p, &suite, &gir_r, &ni, &nr, spi_i, spi_r).unwrap();
    assert_eq!(ki, kr);
    // Swapping the nonces or the SPIs changes every key.
    let swapped = IkeSaKeys::derive(&init_p, &suite, &gir_i, &nr, &ni, spi_i, spi_r).unwrap();
    assert_ne!(swapped.sk_d, ki.sk_d);
    let swapped = IkeSaKeys::derive(&init_p, &suite, &gir_i, &ni, &nr, spi_r, spi_i).unwrap();
    assert_ne!(swapped.sk_d, ki.sk_d);

    // Child SA of IKE_AUTH: AES-CBC + HMAC, no PFS.
    let child = esp_suite(Encr::AES256_CBC, Some(IntegId::HMAC_SHA2_256_128));
    let ci = ChildSaKeys::derive(&init_p, &ki, &child, None, &ni, &nr).unwrap();
    let cr = ChildSaKeys::derive(&resp_p, &kr, &child, None, &ni, &nr).unwrap();
    assert_eq!(ci.outbound(true), cr.inbound(false));
    assert_eq!(ci.inbound(true), cr.outbound(false));
    assert_ne!(ci.outbound(true), ci.inbound(true));
    // KEYMAT layout (§2.17): i→r encryption key, i→r integrity key, r→i encryption, r→i
    // integrity, from prf+(SK_d, Ni | Nr).
    let km = prf_plus(
        &init_p,
        PrfId::HMAC_SHA2_256,
        ki.sk_d.expose(),
        &[&ni, &nr],
        2 * (32 + 32),
    )
    .unwrap();
    let km = km.expose();
    let EspTransform::CbcHmac {
        enc_key,
        integ,
        integ_key,
    } = &ci.initiator_to_responder
    else {
        panic!("CBC expected")
    };
    assert_eq!(enc_key.expose(), &km[..32]);
    assert_eq!(integ_key.expose(), &km[32..64]);
    assert_eq!(*integ, IntegId::HMAC_SHA2_256_128);
    let EspTransform::CbcHmac {
        enc_key, integ_key, ..
    } = &ci.responder_to_initiator
    else {
        panic!("CBC expected")
    };
    assert_eq!(enc_key.expose(), &km[64..96]);
    assert_eq!(integ_key.expose(), &km[96..128]);

    // CREATE_CHILD_SA with PFS: new nonces and a new g^ir, AEAD with key ‖ salt.
    let child = esp_suite(Encr::Aead(AeadAlgorithm::Aes128Gcm), None);
    let (ni2, nr2) = ([3u8; 32], [4u8; 32]);
    let pfs = SecretBytes::from_slice(&[9; 32]);
    let ci = ChildSaKeys::derive(&init_p, &ki, &child, Some(&pfs), &ni2, &nr2).unwrap();
    let cr = ChildSaKeys::derive(&resp_p, &kr, &child, Some(&pfs), &ni2, &nr2).unwrap();
    assert_eq!(ci, cr);
    let km = prf_plus(
        &init_p,
        PrfId::HMAC_SHA2_256,
        ki.sk_d.expose(),
        &[pfs.expose(), &ni2, &nr2],
        40,
    )
    .unwrap();
    assert_eq!(
        ci.initiator_to_responder,
        EspTransform::aead_from_keymat(AeadAlgorithm::Aes128Gcm, &km.expose()[..20]).unwrap()
    );
    assert_eq!(
        ci.responder_to_initiator,
        EspTransform::aead_from_keymat(AeadAlgorithm::Aes128Gcm, &km.expose()[20..]).unwrap()
    );
    let no_pfs = ChildSaKeys::derive(&init_p, &ki, &child, None, &ni2, &nr2).unwrap();
    assert_ne!(no_pfs, ci);

    // IKE SA rekey (§2.18): old PRF and SK_d, new suite and SPIs.
    let new_suite = ike_suite(
        Encr::Aead(AeadAlgorithm::ChaCha20Poly1305),
        None,
        PrfId::HMAC_SHA2_512,
    );
    let (new_i, new_r) = (IkeSpi([0x33; 8]), IkeSpi([0x44; 8]));
    let ri =
        IkeSaKeys::derive_rekey(&init_p, &ki, &new_suite, &pfs, &ni2, &nr2, new_i, new_r).unwrap();
    let rr =
        IkeSaKeys::derive_rekey(&resp_p, &kr, &new_suite, &pfs, &ni2, &nr2, new_i, new_r).unwrap();
    assert_eq!(ri, rr);
    assert_eq!(ri.sk_d.len(), 64);
    let seed = skeyseed_rekey(&init_p, PrfId::HMAC_SHA2_256, &ki.sk_d, &pfs, &ni2, &nr2).unwrap();
    let expected =
        IkeSaKeys::from_skeyseed(&init_p, &new_suite, &seed, &ni2, &nr2, new_i, new_r).unwrap();
    assert_eq!(ri, expected);
}

// ------------------------------------------------------------------ PSK AUTH (§2.15)

fn sample_keys() -> IkeSaKeys {
    let suite = ike_suite(
        Encr::Aead(AeadAlgorithm::Aes256Gcm),
        None,
        PrfId::HMAC_SHA2_256,
    );
    IkeSaKeys::derive(
        &RustCrypto::new(),
        &suite,
        &secret(CAVS_GIR),
        &hex(CAVS_NI),
        &hex(CAVS_NR),
        spi(CAVS_SPII),
        spi(CAVS_SPIR),
    )
    .unwrap()
}

/// AUTH recomputed step by step from the §2.15 formula with the PRF alone (itself checked
/// against RFC 4868 and Wycheproof above), then verified and tampered with.
#[test]
fn psk_auth_matches_section_2_15() {
    let p = RustCrypto::new();
    let keys = sample_keys();
    let psk = Psk::new(SecretBytes::from_slice(
        b"a sufficiently long pre-shared key",
    ))
    .unwrap();
    let msg1 = b"IKE_SA_INIT request bytes".to_vec();
    let msg2 = b"IKE_SA_INIT response bytes".to_vec();
    let id_i = [&[2u8, 0, 0, 0][..], b"initiator.example"].concat(); // ID_FQDN
    let id_r = [&[2u8, 0, 0, 0][..], b"responder.example"].concat();
    let (ni, nr) = (hex(CAVS_NI), hex(CAVS_NR));

    let init = AuthInput {
        signer: Signer::Initiator,
        real_message: &msg1,
        peer_nonce: &nr,
        id_body: &id_i,
    };
    let resp = AuthInput {
        signer: Signer::Responder,
        real_message: &msg2,
        peer_nonce: &ni,
        id_body: &id_r,
    };
    let auth_i = psk_auth(&p, &keys, &psk, &init).unwrap();
    let auth_r = psk_auth(&p, &keys, &psk, &resp).unwrap();
    assert_eq!(auth_i.len(), 32);
    assert_ne!(auth_i, auth_r);

    // By hand: prf(prf(PSK, "Key Pad for IKEv2"), msg1 | Nr | prf(SK_pi, IDi')).
    let alg = PrfId::HMAC_SHA2_256;
    let maced = prf(&p, alg, keys.sk_pi.expose(), &[&id_i]).unwrap();
    let pad = prf(&p, alg, psk.expose(), &[KEY_PAD]).unwrap();
    let want = prf(&p, alg, pad.expose(), &[&msg1, &nr, maced.expose()]).unwrap();
    assert_eq!(&auth_i[..], want.expose());
    assert_eq!(KEY_PAD.len(), 17);
    let octets = signed_octets(&p, alg, &msg1, &nr, &keys.sk_pi, &id_i).unwrap();
    assert_eq!(octets.len(), msg1.len() + nr.len() + 32);
    assert_eq!(
        psk_auth_raw(&p, alg, &psk, &octets).unwrap().expose(),
        &auth_i[..]
    );

    // Verification: both sides accept the right AUTH and reject any change.
    verify_psk_auth(&p, &keys, &psk, &init, &auth_i).unwrap();
    verify_psk_auth(&p, &keys, &psk, &resp, &auth_r).unwrap();
    assert_eq!(
        verify_psk_auth(&p, &keys, &psk, &resp, &auth_i),
        Err(AuthError::Mismatch)
    );
    let mut bad = auth_i.clone();
    bad[31] ^= 1;
    assert_eq!(
        verify_psk_auth(&p, &keys, &psk, &init, &bad),
        Err(AuthError::Mismatch)
    );
    assert_eq!(
        verify_psk_auth(&p, &keys, &psk, &init, &auth_i[..16]),
        Err(AuthError::Mismatch)
    );
    assert_eq!(
        verify_psk_auth(&p, &keys, &psk, &init, &[]),
        Err(AuthError::Mismatch)
    );
    let other = Psk::new(SecretBytes::from_slice(
        b"a sufficiently long pre-shared kez",
    ))
    .unwrap();
    assert_eq!(
        verify_psk_auth(&p, &keys, &other, &init, &auth_i),
        Err(AuthError::Mismatch)
    );
    let tampered_msg = AuthInput {
        real_message: b"IKE_SA_INIT request bytez",
        ..init
    };
    assert_eq!(
        verify_psk_auth(&p, &keys, &psk, &tampered_msg, &auth_i),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn psk_minimum_length() {
    assert_eq!(DEFAULT_MIN_PSK_LEN, 20);
    assert_eq!(
        Psk::new(SecretBytes::from_slice(b"short")),
        Err(AuthError::PskTooShort { len: 5, min: 20 })
    );
    assert!(Psk::new(SecretBytes::from_slice(&[1; 20])).is_ok());
    assert!(Psk::with_min_len(SecretBytes::from_slice(b"short"), 4).is_ok());
    assert!(Psk::with_min_len(SecretBytes::new(vec![]), 0).is_err());
    let psk = Psk::new(SecretBytes::from_slice(b"correct horse battery staple")).unwrap();
    assert_eq!(format!("{psk:?}"), "Psk([redacted])");
}

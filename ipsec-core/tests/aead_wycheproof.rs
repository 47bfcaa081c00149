//! Every provider's AEADs against the Wycheproof AEAD test sets (AES-GCM and
//! ChaCha20-Poly1305), through the [`AeadKey`] interface the ESP engine uses.
//!
//! Only the shapes ESP negotiates are run: 128- and 256-bit AES keys, 256-bit ChaCha20 keys,
//! 12-octet nonces and 16-octet tags (RFC 4106, RFC 7634). Valid vectors must seal to the
//! exact ciphertext ‖ tag and open back to the message; invalid ones must fail to open.

use ipsec_core::RustCrypto;
use ipsec_core::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadAlgorithm, AeadKey, CryptoError, CryptoProvider,
};
use wycheproof::TestResult;
use wycheproof::aead::{TestName, TestSet};

/// What one provider did with one Wycheproof file.
#[derive(Debug, Default)]
struct Counts {
    valid: usize,
    invalid: usize,
    skipped: usize,
}

fn algorithm(name: TestName, key_len: usize) -> Option<AeadAlgorithm> {
    match (name, key_len) {
        (TestName::AesGcm, 16) => Some(AeadAlgorithm::Aes128Gcm),
        (TestName::AesGcm, 32) => Some(AeadAlgorithm::Aes256Gcm),
        (TestName::ChaCha20Poly1305, 32) => Some(AeadAlgorithm::ChaCha20Poly1305),
        _ => None,
    }
}

fn run<P: CryptoProvider>(provider: &P, name: TestName) -> Counts {
    let set = TestSet::load(name).expect("Wycheproof data loads");
    let mut counts = Counts::default();
    for group in &set.test_groups {
        for t in &group.tests {
            let alg = algorithm(name, t.key.len());
            let (Some(alg), AEAD_NONCE_LEN, AEAD_TAG_LEN) = (alg, t.nonce.len(), t.tag.len())
            else {
                counts.skipped += 1;
                continue;
            };
            let id = format!("{name:?} tcId {} ({})", t.tc_id, t.comment);
            let key = provider.aead(alg, &t.key).expect("key binds");
            let nonce: &[u8; AEAD_NONCE_LEN] = t.nonce[..].try_into().unwrap();
            let tag: &[u8; AEAD_TAG_LEN] = t.tag[..].try_into().unwrap();
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let mut buf = t.pt.to_vec();
                    let mut got_tag = [0u8; AEAD_TAG_LEN];
                    key.seal_in_place(nonce, &t.aad, &mut buf, &mut got_tag)
                        .unwrap_or_else(|e| panic!("{id}: seal failed: {e}"));
                    assert_eq!(&buf[..], &t.ct[..], "{id}: ciphertext");
                    assert_eq!(&got_tag, tag, "{id}: tag");
                    key.open_in_place(nonce, &t.aad, &mut buf, tag)
                        .unwrap_or_else(|e| panic!("{id}: open failed: {e}"));
                    assert_eq!(&buf[..], &t.pt[..], "{id}: plaintext");
                    counts.valid += 1;
                }
                TestResult::Invalid => {
                    let mut buf = t.ct.to_vec();
                    assert_eq!(
                        key.open_in_place(nonce, &t.aad, &mut buf, tag),
                        Err(CryptoError::AuthenticationFailed),
                        "{id}: an invalid vector opened"
                    );
                    counts.invalid += 1;
                }
            }
        }
    }
    counts
}

/// Runs both files and checks that a large share of each was exercised.
fn run_all<P: CryptoProvider>(provider: &P) {
    let gcm = run(provider, TestName::AesGcm);
    let chacha = run(provider, TestName::ChaCha20Poly1305);
    println!("{provider:?}: AES-GCM {gcm:?}, ChaCha20-Poly1305 {chacha:?}");
    // With the shapes above, Wycheproof 0.7's aes_gcm_test.json yields 79 valid and 54
    // invalid vectors (the rest use 192-bit keys or other nonce / tag sizes) and
    // chacha20_poly1305_test.json 256 valid and 60 invalid ones.
    assert!(gcm.valid >= 75 && gcm.invalid >= 50, "AES-GCM: {gcm:?}");
    assert!(
        chacha.valid >= 250 && chacha.invalid >= 55,
        "ChaCha20: {chacha:?}"
    );
    assert!(gcm.valid + gcm.invalid + chacha.valid + chacha.invalid >= 440);
}

#[test]
fn rustcrypto_aeads() {
    run_all(&RustCrypto::new());
}

#[cfg(feature = "aws-lc")]
#[test]
fn aws_lc_aeads() {
    run_all(&ipsec_core::AwsLc::new());
}

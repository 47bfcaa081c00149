//! Known-answer tests: the AES-GCM ESP packets of draft-mcgrew-gcm-test-01 §4, the
//! ChaCha20-Poly1305 ESP example of RFC 7634 Appendix A, and an independent reconstruction
//! of the AES-CBC + HMAC-SHA2 packet format (RFC 3602, RFC 4868, RFC 4303 §3.3.2.1).

mod common;

use std::sync::Arc;

use common::*;
use esp::{Direction, EspEngine, EspSaParams, EspTransform, Lifetime, Mode, Output};
use ipsec_core::crypto::{AeadAlgorithm, CbcKey, MacKey};
use ipsec_core::transform::IntegId;
use ipsec_core::{CryptoProvider, RustCrypto, SecretBytes, Spi};

struct GcmVector {
    name: &'static str,
    key: &'static str,
    /// salt ‖ IV
    nonce: &'static str,
    /// SPI ‖ [seq_hi ‖] seq_lo
    aad: &'static str,
    /// The ESP payload: inner packet, padding, pad length, next header.
    plaintext: &'static str,
    ciphertext: &'static str,
    tag: &'static str,
}

/// draft-mcgrew-gcm-test-01 §4, the AES-GCM cases with 128- and 256-bit keys whose SPI is
/// assignable (the all-zero case has SPI 0, and one case uses a 192-bit key).
const GCM: &[GcmVector] = &[
    GcmVector {
        name: "AES-128 ESN seq 0x8765432100000000",
        key: "4c80cdefbb5d10da906ac73c3613a634",
        nonce: "2e443b684956ed7e3b244cfe",
        aad: "000043218765432100000000",
        plaintext: "45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000\
                    00000000045f736970045f756470037369700963796265726369747902646b00\
                    0021000101020201",
        ciphertext: "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34\
                     cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce\
                     61bc17d768fd9732",
        tag: "459018148f6cbe722fd04796562dfdb4",
    },
    GcmVector {
        name: "AES-128 seq 10",
        key: "feffe9928665731c6d6a8f9467308308",
        nonce: "cafebabefacedbaddecaf888",
        aad: "0000a5f80000000a",
        plaintext: "4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d00100\
                    0001000000000000037369700963796265726369747902646b00000100010001",
        ciphertext: "deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c\
                     3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1",
        tag: "83b70d3aa8bc6ee4c309e9d85a41ad4a",
    },
    GcmVector {
        name: "AES-256 seq 2",
        key: "abbccddef00112233445566778899aababbccddef00112233445566778899aab",
        nonce: "112233440102030405060708",
        aad: "4a2cbfe300000002",
        plaintext: "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000\
                    7002400020bf0000020405b40101040201020201",
        ciphertext: "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763\
                     748a637985771d347f0545659f14e99def842d8e",
        tag: "b335f4eecfdbf831824b4c4915956c96",
    },
    GcmVector {
        name: "AES-128 ESN seq 0x1010101010101010",
        key: "3de09874b388e6491988d0c3607eae1f",
        nonce: "57690e434e280000a2fca1a3",
        aad: "42f67e3f1010101010101010",
        plaintext: "4500003c99c300008001cb7c40679318010101010800085c0200430061626364\
                    65666768696a6b6c6d6e6f707172737475767761626364656667686901020201",
        ciphertext: "fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c357917\
                     65acbd8701ad79845bf9fe3fba487bc91755e6662b4c8d0d1f5e22739530320a",
        tag: "e0d731cc978ecafaeae88f00e80d6e48",
    },
    GcmVector {
        name: "AES-128 ESN seq 0x1010101010101010, short",
        key: "3de09874b388e6491988d0c3607eae1f",
        nonce: "57690e434e280000a2fca1a3",
        aad: "42f67e3f1010101010101010",
        plaintext: "4500001c42a200008001441f406793b6e00000020a00f5ff01020201",
        ciphertext: "fba2ca845e5df9f0f22c3e6e86dd831e1fc65792cd1af9130e1379ed",
        tag: "369f071f35e034be95f112e4e7d05d35",
    },
    GcmVector {
        name: "AES-128 ESN seq 1",
        key: "abbccddef00112233445566778899aab",
        nonce: "decaf888cafedebaceface74",
        aad: "000001000000000000000001",
        plaintext: "4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d5\
                    00004e20001e8c18d75b81dc91baa0476b91b924b280389d92c963bac046ec95\
                    9b6266c04722b14923010101",
        ciphertext: "18a6fd42f72cbf4ab2a2ea901f73d814e3e7f243d95412e1c349c1d2fbec168f\
                     9190feebaf2cb01984e65863965d7472b79da345e0e780191f0d2f0e0f496c22\
                     6f2127b27db35724e7845d68",
        tag: "651f57e65f354f75ff17015769623436",
    },
    GcmVector {
        name: "AES-256 ESN seq 0x156f3126dd0db99b",
        key: "abbccddef00112233445566778899aababbccddef00112233445566778899aab",
        nonce: "73616c74616e640169766563",
        aad: "17405e67156f3126dd0db99b",
        plaintext: "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb712602\
                    50101f646d540001",
        ciphertext: "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57f\
                     f4d3a31ce673119e",
        tag: "451626c2415771e3b7eebca614c89b35",
    },
    GcmVector {
        name: "AES-128 ESN seq 0x1010101010101010, UDP",
        key: "3de09874b388e6491988d0c3607eae1f",
        nonce: "57690e434e280000a2fca1a3",
        aad: "42f67e3f1010101010101010",
        plaintext: "45000049333e00007f119182c3fb1d10c2b1d326c02831ce0035cb458003025b\
                    000001e0001e8c18d65759d52284a0352c71475c8880391c764d6e5ee0496b32\
                    5ae270c03899493915010101",
        ciphertext: "fba2cad12fc1f9f00d3cebf305410db83d7784b607323d220f24b0a97d541828\
                     00cadb0f68d99ef0e0c0c89ae9bea8884e52d65bc1afd0740f742444747b5b39\
                     ab533163aad4550ee5160975",
        tag: "cdb608c5769189609763b8e18caa81e2",
    },
    GcmVector {
        name: "AES-256 ESN, non-IP payload",
        key: "abbccddef00112233445566778899aababbccddef00112233445566778899aab",
        nonce: "73616c74616e640169766563",
        aad: "17405e67156f3126dd0db99b",
        plaintext: "636973636f0172756c657301746865016e6574776501646566696e6501746865\
                    746563686e6f6c6f67696573017468617477696c6c01646566696e65746f6d6f\
                    72726f7701020201",
        ciphertext: "d4b7ed86a1777f2ea13d6973d324c69e7b43f826fb56831226508bebd2dceb18\
                     d0a6df10e5487df074113e14c641024e3e6773d91a62ee429b043a10e3efe6b0\
                     12a49363412364f8",
        tag: "c0cac587f249e56b11e24f30e44ccc76",
    },
    GcmVector {
        name: "AES-128 seq 0xffffffff, empty payload",
        key: "7d773d00c144c525ac619d18c84a3f47",
        nonce: "d966426743457e9182443bc6",
        aad: "335467aeffffffff",
        plaintext: "01020201",
        ciphertext: "437f866b",
        tag: "cb3f699fe9b0822bac961c4504bef270",
    },
    GcmVector {
        name: "AES-128 ESN seq 1, no padding",
        key: "abbccddef00112233445566778899aab",
        nonce: "decaf888cafedebaceface74",
        aad: "000001000000000000000001",
        plaintext: "746f016265016f72016e6f7401746f0162650001",
        ciphertext: "29c9fc69a197d038ccdd14e2ddfcaa0543332164",
        tag: "412503524303ed3c6c5f283843af8c3e",
    },
    GcmVector {
        name: "AES-256 ESN seq 2^64-1",
        key: "6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961",
        nonce: "7475726e333021696765746d",
        aad: "796b6963ffffffffffffffff",
        plaintext: "45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364\
                    65666768696a6b6c6d6e6f707172737401020201",
        ciphertext: "f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a86\
                     4cd3d78ca4ae68a32b42458fb57dbe821dcc63b9",
        tag: "d0937ba2945f669368661a329fb4c053",
    },
];

fn aead_params(
    alg: AeadAlgorithm,
    key: &[u8],
    salt: &[u8],
    spi: u32,
    esn: bool,
    mode: Mode,
    direction: Direction,
) -> EspSaParams {
    EspSaParams {
        spi: Spi(spi),
        direction,
        mode,
        transform: EspTransform::Aead {
            alg,
            key: SecretBytes::from_slice(key),
            salt: SecretBytes::from_slice(salt),
        },
        esn,
        replay_window: 64,
        lifetime: Lifetime::default(),
        encap: None,
        local_addr: ip("192.0.2.5"),
        remote_addr: ip("198.51.100.5"),
        ts_local: vec![ts("192.0.2.0/24")],
        ts_remote: vec![ts("198.51.100.0/24")],
    }
}

#[test]
fn draft_mcgrew_gcm_test_vectors_decapsulate_and_seal() {
    for v in GCM {
        let key = hex(v.key);
        let nonce = hex(v.nonce);
        let aad = hex(v.aad);
        let pt = hex(v.plaintext);
        let esn = aad.len() == 12;
        let spi = u32::from_be_bytes(aad[..4].try_into().unwrap());
        let seq = if esn {
            u64::from_be_bytes(aad[4..12].try_into().unwrap())
        } else {
            u64::from(u32::from_be_bytes(aad[4..8].try_into().unwrap()))
        };
        let alg = if key.len() == 16 {
            AeadAlgorithm::Aes128Gcm
        } else {
            AeadAlgorithm::Aes256Gcm
        };
        // The wire packet: SPI ‖ seq_lo ‖ IV ‖ ciphertext ‖ tag.
        let mut wire = aad[..4].to_vec();
        wire.extend_from_slice(&aad[aad.len() - 4..]);
        wire.extend_from_slice(&nonce[4..]);
        wire.extend(hex(v.ciphertext));
        wire.extend(hex(v.tag));

        let mut e = EspEngine::new(Arc::new(RustCrypto::new()));
        // Transport mode and the ESP-only input: the vectors' Next Header values are not
        // all consistent with a tunnel-mode inner packet, so we check the payload itself.
        let inb = e
            .install(
                t0(),
                aead_params(
                    alg,
                    &key,
                    &nonce[..4],
                    spi,
                    esn,
                    Mode::Transport,
                    Direction::Inbound,
                ),
            )
            .unwrap();
        if seq > 1 {
            // Put the window just below the vector's number so the high half is inferred.
            e.mark_received_for_testing(inb, seq - 1);
        }
        let mut buf = wire.clone();
        let d = e
            .decapsulate(t0(), &mut buf)
            .unwrap_or_else(|r| panic!("{}: {r:?}", v.name));
        let pad = usize::from(pt[pt.len() - 2]);
        assert_eq!(d.seq, seq, "{}", v.name);
        assert_eq!(d.next_header, pt[pt.len() - 1], "{}", v.name);
        assert_eq!(
            &buf[d.range.clone()],
            &pt[..pt.len() - 2 - pad],
            "{}",
            v.name
        );
        // The same packet again is a replay.
        let mut again = wire.clone();
        assert_eq!(
            e.decapsulate(t0(), &mut again),
            Err(esp::DropReason::Replayed { seq }),
            "{}",
            v.name
        );

        // Sealing with the vector's IV through the engine's seal routine gives the packet.
        let out = e
            .install(
                t0(),
                aead_params(
                    alg,
                    &key,
                    &nonce[..4],
                    spi,
                    esn,
                    Mode::Transport,
                    Direction::Outbound,
                ),
            )
            .unwrap();
        let mut sealed = vec![0u8; 16];
        sealed.extend_from_slice(&pt);
        sealed.extend_from_slice(&[0; 16]);
        e.seal_raw_for_testing(out, seq, Some(&nonce[4..]), &mut sealed)
            .unwrap();
        assert_eq!(sealed, wire, "{}", v.name);
    }
}

/// RFC 7634 Appendix A: the ESP example, an IPv4 ICMP echo request in tunnel mode.
#[test]
fn rfc7634_esp_example() {
    let keymat = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3");
    let pt = hex("45 00 00 54 a6 f2 00 00 40 01 e7 78 c6 33 64 05
         c0 00 02 05 08 00 5b 7a 3a 08 00 00 55 3b ec 10
         00 07 36 27 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13
         14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23
         24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33
         34 35 36 37 01 02 02 04");
    let ct_tag = hex("24 03 94 28 b9 7f 41 7e 3c 13 75 3a 4f 05 08 7b
         67 c3 52 e6 a7 fa b1 b9 82 d4 66 ef 40 7a e5 c6
         14 ee 80 99 d5 28 44 eb 61 aa 95 df ab 4c 02 f7
         2a a7 1e 7c 4c 4f 64 c9 be fe 2f ac c6 38 e8 f3
         cb ec 16 3f ac 46 9b 50 27 73 f6 fb 94 e6 64 da
         91 65 b8 28 29 f6 41 e0
         76 aa a8 26 6b 7f b0 f7 b1 1b 36 99 07 e1 ad 43");
    let mut wire = hex("01020304 00000005 1011121314151617");
    wire.extend_from_slice(&ct_tag);

    let mut e = EspEngine::new(Arc::new(RustCrypto::new()));
    let alg = AeadAlgorithm::ChaCha20Poly1305;
    let mut p = aead_params(
        alg,
        &keymat[..32],
        &keymat[32..],
        0x01020304,
        false,
        Mode::Tunnel,
        Direction::Inbound,
    );
    p.ts_local = vec![ts("192.0.2.0/24")];
    p.ts_remote = vec![ts("198.51.100.0/24")];
    let inb = e.install(t0(), p.clone()).unwrap();
    let mut buf = wire.clone();
    let d = e.decapsulate(t0(), &mut buf).unwrap();
    assert_eq!((d.sa, d.seq, d.next_header), (inb, 5, 4));
    let inner = &buf[d.range.clone()];
    assert_eq!(inner, &pt[..0x54]);
    // The independent judge agrees it is a valid IPv4 ICMP packet.
    let sliced = etherparse::SlicedPacket::from_ip(inner).unwrap();
    assert!(matches!(sliced.net, Some(etherparse::NetSlice::Ipv4(_))));

    // A tunnel SA whose selectors exclude the sender refuses it after decryption.
    let mut e2 = EspEngine::new(Arc::new(RustCrypto::new()));
    p.ts_remote = vec![ts("203.0.113.0/24")];
    let inb2 = e2.install(t0(), p).unwrap();
    let mut buf = wire.clone();
    assert_eq!(
        e2.decapsulate(t0(), &mut buf),
        Err(esp::DropReason::TsMismatch)
    );
    assert_eq!(e2.stats(inb2).unwrap().drops.ts_mismatch, 1);

    // Sealing with the RFC's IV reproduces the packet.
    let out = e
        .install(
            t0(),
            aead_params(
                alg,
                &keymat[..32],
                &keymat[32..],
                0x01020304,
                false,
                Mode::Tunnel,
                Direction::Outbound,
            ),
        )
        .unwrap();
    let mut sealed = vec![0u8; 16];
    sealed.extend_from_slice(&pt);
    sealed.extend_from_slice(&[0; 16]);
    e.seal_raw_for_testing(out, 5, Some(&hex("1011121314151617")), &mut sealed)
        .unwrap();
    assert_eq!(sealed, wire);
}

/// The AEAD IV on the wire is the 64-bit sequence number, and the AAD carries the high half
/// only with ESN (RFC 4106 §5): checked by opening an engine packet with the raw provider.
#[test]
fn aead_packet_format_reconstructed_with_raw_provider() {
    use ipsec_core::crypto::AeadKey;
    for esn in [false, true] {
        let mut s = Setup::simple(Suite::Gcm256);
        s.esn = esn;
        let mut pair = Pair::new(s);
        let hi: u64 = if esn { 5 } else { 0 };
        pair.tx.set_last_seq_for_testing(pair.out, (hi << 32) + 6);
        let inner = inner_packet(&s, b"hello");
        let wire = pair.encap(&inner).unwrap();
        let seq: u64 = (hi << 32) + 7;
        assert_eq!(&wire[..4], &SPI.to_be_bytes());
        assert_eq!(&wire[4..8], &(seq as u32).to_be_bytes());
        assert_eq!(
            &wire[8..16],
            &seq.to_be_bytes(),
            "IV = 64-bit sequence number"
        );
        let EspTransform::Aead { key, salt, .. } = transform(Suite::Gcm256) else {
            unreachable!()
        };
        let k = RustCrypto::new()
            .aead(AeadAlgorithm::Aes256Gcm, key.expose())
            .unwrap();
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(salt.expose());
        nonce[4..].copy_from_slice(&wire[8..16]);
        let mut aad = wire[..4].to_vec();
        if esn {
            aad.extend_from_slice(&5u32.to_be_bytes());
        }
        aad.extend_from_slice(&wire[4..8]);
        let mut ct = wire[16..wire.len() - 16].to_vec();
        let tag: [u8; 16] = wire[wire.len() - 16..].try_into().unwrap();
        k.open_in_place(&nonce, &aad, &mut ct, &tag).unwrap();
        assert_eq!(&ct[..inner.len()], &inner[..]);
        // 28 + 5 = 33 octets + 2 = 35 → 1 octet of padding to 36.
        assert_eq!(&ct[inner.len()..], &[1, 1, 4]);
    }
}

/// AES-CBC + HMAC-SHA2-256-128: the packet is SPI ‖ seq ‖ IV ‖ CBC ciphertext ‖ ICV with the
/// ICV over SPI..ciphertext plus the ESN high half (RFC 4303 §3.3.2.1), and the IV is
/// AES_K(seq ‖ 0^64): reconstructed here with the raw provider.
#[test]
fn cbc_hmac_packet_format_reconstructed_with_raw_provider() {
    for esn in [false, true] {
        let mut s = Setup::simple(Suite::CbcSha256);
        s.esn = esn;
        s.output = Output::Esp;
        let mut pair = Pair::new(s);
        let hi: u64 = if esn { 3 } else { 0 };
        pair.tx.set_last_seq_for_testing(pair.out, (hi << 32) + 41);
        let seq: u64 = (hi << 32) + 42;
        let inner = inner_packet(&s, &[0xab; 100]);
        let wire = pair.encap(&inner).unwrap();
        let EspTransform::CbcHmac {
            enc_key, integ_key, ..
        } = transform(Suite::CbcSha256)
        else {
            unreachable!()
        };
        let p = RustCrypto::new();
        let cbc = p.cbc(enc_key.expose()).unwrap();
        let mac = p
            .mac(IntegId::HMAC_SHA2_256_128, integ_key.expose())
            .unwrap();
        let (signed, icv) = wire.split_at(wire.len() - 16);
        if esn {
            mac.verify(&[signed, &3u32.to_be_bytes()], icv).unwrap();
            assert!(mac.verify(&[signed], icv).is_err());
        } else {
            mac.verify(&[signed], icv).unwrap();
        }
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&seq.to_be_bytes());
        cbc.encrypt_in_place(&[0; 16], &mut iv).unwrap();
        assert_eq!(&wire[8..24], &iv, "IV = AES_K(seq ‖ 0)");
        let mut ct = signed[24..].to_vec();
        assert_eq!(ct.len() % 16, 0);
        cbc.decrypt_in_place(&iv, &mut ct).unwrap();
        assert_eq!(&ct[..inner.len()], &inner[..]);
        // 128 + 2 = 130 → 14 octets of padding to 144.
        let pad: Vec<u8> = (1..=14).collect();
        assert_eq!(&ct[inner.len()..inner.len() + 14], &pad[..]);
        assert_eq!(&ct[inner.len() + 14..], &[14, 4]);
        // The receiver infers the high half from its window (RFC 4303 Appendix A.2).
        pair.rx.mark_received_for_testing(pair.inb, seq - 1);
        let (dec, _) = pair.decap(&wire).unwrap();
        assert_eq!(dec, inner);
    }
}

//! A debugging key log: per SA, the record Wireshark/tshark needs to decrypt it.
//!
//! Off by default (`ipsec-peer --keylog FILE` turns it on). Every line of the file is one
//! tshark `-o` argument, ready to pass as is:
//!
//! ```text
//! # ipsec-peer key log: each line is one tshark `-o` option
//! uat:esp_sa:"IPv6","fd00::1","fd00::2","0x00001001","AES-GCM with 16 octet ICV [RFC4106]","0x…","NULL",""
//! uat:ikev2_decryption_table:0123456789abcdef,fedcba9876543210,…,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"
//! ```
//!
//! so a script can decrypt a capture with
//! `mapfile -t k < <(grep -v '^#' keylog); tshark -r cap.pcap -o esp.enable_encryption_decode:TRUE "${k[@]/#/-o}"`
//! (or strip the `uat:<table>:` prefix to build Wireshark profile files named `esp_sa` and
//! `ikev2_decryption_table`). The field layouts are those of Wireshark 4.0's UAT tables:
//!
//! * `esp_sa`: protocol, source, destination, SPI, encryption algorithm, encryption key
//!   (key ‖ salt for AES-GCM, RFC 4106 §8.1), authentication algorithm, authentication key.
//! * `ikev2_decryption_table`: SPIi, SPIr, SK_ei, SK_er (unquoted hex), encryption algorithm,
//!   SK_ai, SK_ar, integrity algorithm.
//!
//! Wireshark 4.0 cannot decrypt ChaCha20-Poly1305; such SAs get a comment line instead.
//! This is the only place where key bytes leave the process (ARCHITECTURE.md rule 8).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use ipsec_core::crypto::AeadAlgorithm;
use ipsec_core::sa::Direction;
use ipsec_core::transform::IntegId;
use ipsec_core::{EspSaParams, EspTransform, IkeSpi, SecretBytes};

/// The `uat:esp_sa` record for one ESP SA, or `Err(comment)` when Wireshark cannot decrypt
/// the transform.
pub fn esp_sa_record(p: &EspSaParams) -> Result<String, String> {
    let (src, dst) = match p.direction {
        Direction::Outbound => (p.local_addr, p.remote_addr),
        Direction::Inbound => (p.remote_addr, p.local_addr),
    };
    let proto = if src.is_ipv4() { "IPv4" } else { "IPv6" };
    let (enc, enc_key, auth, auth_key) = match &p.transform {
        EspTransform::Aead { alg, key, salt } => {
            let name = match alg {
                AeadAlgorithm::Aes128Gcm | AeadAlgorithm::Aes256Gcm => {
                    "AES-GCM with 16 octet ICV [RFC4106]"
                }
                AeadAlgorithm::ChaCha20Poly1305 => {
                    return Err(format!(
                        "# esp_sa: SPI 0x{} uses ChaCha20-Poly1305, which Wireshark 4.0 cannot decrypt",
                        p.spi
                    ));
                }
            };
            (name, hex2(key, Some(salt)), "NULL", String::new())
        }
        EspTransform::CbcHmac {
            enc_key,
            integ,
            integ_key,
        } => {
            let auth = match *integ {
                IntegId::HMAC_SHA1_96 => "HMAC-SHA-1-96 [RFC2404]",
                IntegId::HMAC_SHA2_256_128 => "HMAC-SHA-256-128 [RFC4868]",
                IntegId::HMAC_SHA2_384_192 => "HMAC-SHA-384-192 [RFC4868]",
                IntegId::HMAC_SHA2_512_256 => "HMAC-SHA-512-256 [RFC4868]",
                other => {
                    return Err(format!(
                        "# esp_sa: SPI 0x{} uses integrity {other}, unknown to Wireshark",
                        p.spi
                    ));
                }
            };
            (
                "AES-CBC [RFC3602]",
                hex2(enc_key, None),
                auth,
                format!("0x{}", hex::encode(integ_key.expose())),
            )
        }
    };
    Ok(format!(
        "uat:esp_sa:\"{proto}\",\"{src}\",\"{dst}\",\"0x{:08x}\",\"{enc}\",\"0x{enc_key}\",\"{auth}\",\"{auth_key}\"",
        p.spi.0
    ))
}

fn hex2(a: &SecretBytes, b: Option<&SecretBytes>) -> String {
    let mut s = hex::encode(a.expose());
    if let Some(b) = b {
        s.push_str(&hex::encode(b.expose()));
    }
    s
}

/// The IKE SA cipher, as Wireshark names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeCipher {
    /// An AEAD (AES-GCM-16 or ChaCha20-Poly1305); SK_a* are empty.
    Aead(AeadAlgorithm),
    /// AES-CBC with a key of 16, 24 or 32 octets plus an integrity transform.
    AesCbc {
        /// Key length in octets.
        key_len: usize,
        /// The integrity algorithm.
        integ: IntegId,
    },
}

/// Keys of one IKE SA (RFC 7296 §2.14), for [`ikev2_record`].
#[derive(Debug, Clone)]
pub struct IkeSaKeys {
    /// Initiator SPI.
    pub spi_i: IkeSpi,
    /// Responder SPI.
    pub spi_r: IkeSpi,
    /// Cipher and integrity.
    pub cipher: IkeCipher,
    /// SK_ei (for AEADs: key ‖ salt).
    pub sk_ei: SecretBytes,
    /// SK_er.
    pub sk_er: SecretBytes,
    /// SK_ai (empty for AEADs).
    pub sk_ai: SecretBytes,
    /// SK_ar (empty for AEADs).
    pub sk_ar: SecretBytes,
}

/// The `uat:ikev2_decryption_table` record for one IKE SA, or `Err(comment)` when Wireshark
/// cannot decrypt its cipher.
pub fn ikev2_record(k: &IkeSaKeys) -> Result<String, String> {
    let (enc, integ) = match k.cipher {
        IkeCipher::Aead(AeadAlgorithm::Aes128Gcm) => {
            ("AES-GCM-128 with 16 octet ICV [RFC5282]", "NONE [RFC4306]")
        }
        IkeCipher::Aead(AeadAlgorithm::Aes256Gcm) => {
            ("AES-GCM-256 with 16 octet ICV [RFC5282]", "NONE [RFC4306]")
        }
        IkeCipher::Aead(AeadAlgorithm::ChaCha20Poly1305) => {
            return Err(format!(
                "# ikev2_decryption_table: IKE SA {}_i {}_r uses ChaCha20-Poly1305, which Wireshark 4.0 cannot decrypt",
                k.spi_i, k.spi_r
            ));
        }
        IkeCipher::AesCbc { key_len, integ } => {
            let enc = match key_len {
                16 => "AES-CBC-128 [RFC3602]",
                24 => "AES-CBC-192 [RFC3602]",
                32 => "AES-CBC-256 [RFC3602]",
                n => {
                    return Err(format!(
                        "# ikev2_decryption_table: AES-CBC key of {n} octets"
                    ));
                }
            };
            let integ = match integ {
                IntegId::HMAC_SHA1_96 => "HMAC_SHA1_96 [RFC2404]",
                IntegId::HMAC_SHA2_256_128 => "HMAC_SHA2_256_128 [RFC4868]",
                IntegId::HMAC_SHA2_384_192 => "HMAC_SHA2_384_192 [RFC4868]",
                IntegId::HMAC_SHA2_512_256 => "HMAC_SHA2_512_256 [RFC4868]",
                other => {
                    return Err(format!(
                        "# ikev2_decryption_table: integrity {other} unknown to Wireshark"
                    ));
                }
            };
            (enc, integ)
        }
    };
    let mut s = String::from("uat:ikev2_decryption_table:");
    let _ = write!(
        s,
        "{},{},{},{},\"{enc}\",{},{},\"{integ}\"",
        hex::encode(k.spi_i.0),
        hex::encode(k.spi_r.0),
        hex::encode(k.sk_ei.expose()),
        hex::encode(k.sk_er.expose()),
        hex::encode(k.sk_ai.expose()),
        hex::encode(k.sk_ar.expose()),
    );
    Ok(s)
}

/// The key log sink: a no-op unless opened.
#[derive(Debug, Default)]
pub struct KeyLog {
    file: Option<File>,
}

impl KeyLog {
    /// A sink that writes nothing.
    pub fn disabled() -> Self {
        Self { file: None }
    }

    /// Creates (truncates) `path` with mode 0600 and writes the header comment.
    pub fn create(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        writeln!(
            file,
            "# ipsec-peer key log: each line is one tshark `-o` option. DEBUGGING ONLY: these keys decrypt the traffic."
        )?;
        Ok(Self { file: Some(file) })
    }

    /// True if records are written.
    pub fn is_enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Logs one ESP SA.
    pub fn log_esp_sa(&mut self, p: &EspSaParams) {
        if self.file.is_some() {
            let line = esp_sa_record(p).unwrap_or_else(|c| c);
            self.write_line(&line);
        }
    }

    /// Logs one IKE SA.
    pub fn log_ike_sa(&mut self, k: &IkeSaKeys) {
        if self.file.is_some() {
            let line = ikev2_record(k).unwrap_or_else(|c| c);
            self.write_line(&line);
        }
    }

    fn write_line(&mut self, line: &str) {
        if let Some(f) = &mut self.file
            && let Err(e) = writeln!(f, "{line}").and_then(|()| f.flush())
        {
            tracing::warn!(error = %e, "key log write failed; disabling it");
            self.file = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec_core::sa::UdpEncap;
    use ipsec_core::{Lifetime, Mode, Spi};

    fn params(dir: Direction, transform: EspTransform) -> EspSaParams {
        EspSaParams {
            spi: Spi(0x1001),
            direction: dir,
            mode: Mode::Tunnel,
            transform,
            esn: false,
            replay_window: 1024,
            lifetime: Lifetime::default(),
            encap: Some(UdpEncap {
                local_port: 4500,
                remote_port: 4500,
            }),
            local_addr: "fd00::1".parse().unwrap(),
            remote_addr: "fd00::2".parse().unwrap(),
            ts_local: vec![],
            ts_remote: vec![],
        }
    }

    fn gcm() -> EspTransform {
        EspTransform::aead_from_keymat(AeadAlgorithm::Aes128Gcm, &[0xab; 20]).unwrap()
    }

    #[test]
    fn esp_records() {
        let out = esp_sa_record(&params(Direction::Outbound, gcm())).unwrap();
        assert_eq!(
            out,
            format!(
                "uat:esp_sa:\"IPv6\",\"fd00::1\",\"fd00::2\",\"0x00001001\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"",
                "ab".repeat(20)
            )
        );
        let inb = esp_sa_record(&params(Direction::Inbound, gcm())).unwrap();
        assert!(inb.starts_with("uat:esp_sa:\"IPv6\",\"fd00::2\",\"fd00::1\","));
        let chacha =
            EspTransform::aead_from_keymat(AeadAlgorithm::ChaCha20Poly1305, &[1; 36]).unwrap();
        let c = esp_sa_record(&params(Direction::Outbound, chacha)).unwrap_err();
        assert!(c.starts_with('#') && !c.contains("0101"));
        let cbc = EspTransform::CbcHmac {
            enc_key: SecretBytes::from_slice(&[1; 16]),
            integ: IntegId::HMAC_SHA2_256_128,
            integ_key: SecretBytes::from_slice(&[2; 32]),
        };
        let r = esp_sa_record(&params(Direction::Outbound, cbc)).unwrap();
        assert!(r.ends_with(&format!(
            "\"AES-CBC [RFC3602]\",\"0x{}\",\"HMAC-SHA-256-128 [RFC4868]\",\"0x{}\"",
            "01".repeat(16),
            "02".repeat(32)
        )));
    }

    #[test]
    fn ike_records() {
        let k = IkeSaKeys {
            spi_i: IkeSpi([1, 2, 3, 4, 5, 6, 7, 8]),
            spi_r: IkeSpi([9; 8]),
            cipher: IkeCipher::Aead(AeadAlgorithm::Aes256Gcm),
            sk_ei: SecretBytes::from_slice(&[0xaa; 36]),
            sk_er: SecretBytes::from_slice(&[0xbb; 36]),
            sk_ai: SecretBytes::default(),
            sk_ar: SecretBytes::default(),
        };
        assert_eq!(
            ikev2_record(&k).unwrap(),
            format!(
                "uat:ikev2_decryption_table:0102030405060708,0909090909090909,{},{},\"AES-GCM-256 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\"",
                "aa".repeat(36),
                "bb".repeat(36)
            )
        );
        let cbc = IkeSaKeys {
            cipher: IkeCipher::AesCbc {
                key_len: 32,
                integ: IntegId::HMAC_SHA2_256_128,
            },
            ..k.clone()
        };
        assert!(
            ikev2_record(&cbc)
                .unwrap()
                .contains("\"AES-CBC-256 [RFC3602]\",,,\"HMAC_SHA2_256_128 [RFC4868]\"")
        );
        let chacha = IkeSaKeys {
            cipher: IkeCipher::Aead(AeadAlgorithm::ChaCha20Poly1305),
            ..k
        };
        assert!(ikev2_record(&chacha).unwrap_err().starts_with('#'));
    }

    #[test]
    fn file_sink() {
        let path = std::env::temp_dir().join(format!("ipsec-peer-keylog-{}", std::process::id()));
        let mut log = KeyLog::create(&path).unwrap();
        assert!(log.is_enabled());
        log.log_esp_sa(&params(Direction::Outbound, gcm()));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with('#'));
        assert!(lines[1].starts_with("uat:esp_sa:"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_file(&path).unwrap();
        let mut off = KeyLog::disabled();
        off.log_esp_sa(&params(Direction::Outbound, gcm()));
        assert!(!off.is_enabled());
    }
}

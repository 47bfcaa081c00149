//! Writes a capture of ESP packets produced by our engine, and the key log that decrypts
//! them, so that an independent dissector (tshark, see `interop/07-tshark-esp-pcap.sh`) can
//! judge the bytes without any network or privileges.
//!
//! Two tunnel-mode SAs from fd00::1 to fd00::2 (IPv6 outer), each carrying ICMPv6 echo
//! requests from fd01::1 to fd02::1:
//!
//! * SPI 0x00001001, AES-256-GCM, raw ESP (IPv6 next header 50);
//! * SPI 0x00001002, AES-128-GCM, UDP-encapsulated (RFC 3948, port 4500 → 4500).
//!
//! Usage: `esp-pcap OUT.pcap KEYLOG [COUNT]` (COUNT echo requests per SA, default 5). The
//! capture is a classic pcap file with LINKTYPE_RAW (each record starts at the outer IPv6
//! header); each key-log line is one tshark `-o` option (see [`examples::keylog`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv6Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use esp::{
    Direction, EspConfig, EspEngine, EspSaParams, EspTransform, Lifetime, Mode, Output, UdpEncap,
};
use examples::keylog::esp_sa_record;
use ipsec_core::crypto::AeadAlgorithm;
use ipsec_core::{CryptoProvider, RustCrypto, Spi, TrafficSelector};

const OUTER_SRC: &str = "fd00::1";
const OUTER_DST: &str = "fd00::2";
const INNER_SRC: &str = "fd01::1";
const INNER_DST: &str = "fd02::1";
/// LINKTYPE_RAW: every record is an IPv4 or IPv6 packet, no link-layer header.
const LINKTYPE_RAW: u32 = 101;

/// A classic (libpcap 2.4, microsecond) capture file writer.
struct Pcap<W: Write> {
    out: W,
}

impl<W: Write> Pcap<W> {
    fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // magic, little-endian file
        out.write_all(&2u16.to_le_bytes())?; // version 2.4
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?; // thiszone
        out.write_all(&0u32.to_le_bytes())?; // sigfigs
        out.write_all(&65_535u32.to_le_bytes())?; // snaplen
        out.write_all(&LINKTYPE_RAW.to_le_bytes())?;
        Ok(Self { out })
    }

    fn packet(&mut self, micros: u64, data: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(data.len()).expect("packet below 4 GiB");
        self.out
            .write_all(&((micros / 1_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((micros % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?; // captured length
        self.out.write_all(&len.to_le_bytes())?; // original length
        self.out.write_all(data)
    }
}

/// The Internet checksum (RFC 1071) of `parts`, concatenated (each of even length but the
/// last).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv6 packet carrying an ICMPv6 echo request (RFC 4443 §4.1) with a valid checksum
/// over the RFC 8200 §8.1 pseudo-header.
fn echo_request(src: Ipv6Addr, dst: Ipv6Addr, id: u16, seq: u16, data_len: usize) -> Vec<u8> {
    let mut icmp = vec![128, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend((0..data_len).map(|i| (i as u8).wrapping_add(0x20)));
    let len = icmp.len() as u32;
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let c = checksum(&[&pseudo, &icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());

    let mut pkt = vec![0x60, 0, 0, 0];
    pkt.extend_from_slice(&(len as u16).to_be_bytes());
    pkt.push(58); // ICMPv6
    pkt.push(64); // hop limit
    pkt.extend_from_slice(&src.octets());
    pkt.extend_from_slice(&dst.octets());
    pkt.extend_from_slice(&icmp);
    pkt
}

fn sa_params(
    spi: u32,
    alg: AeadAlgorithm,
    encap: bool,
    provider: &RustCrypto,
) -> Result<EspSaParams> {
    let mut keymat = vec![0u8; alg.keymat_len()];
    provider
        .fill_random(&mut keymat)
        .context("random source failed")?;
    Ok(EspSaParams {
        spi: Spi(spi),
        direction: Direction::Outbound,
        mode: Mode::Tunnel,
        transform: EspTransform::aead_from_keymat(alg, &keymat).context("keying material")?,
        esn: false,
        replay_window: 0,
        lifetime: Lifetime::default(),
        encap: encap.then_some(UdpEncap {
            local_port: 4500,
            remote_port: 4500,
        }),
        local_addr: OUTER_SRC.parse()?,
        remote_addr: OUTER_DST.parse()?,
        ts_local: vec![TrafficSelector::any_v6()],
        ts_remote: vec![TrafficSelector::any_v6()],
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pcap_path, keylog_path, count) = match args.as_slice() {
        [p, k] => (p, k, 5),
        [p, k, n] => (p, k, n.parse().context("COUNT")?),
        _ => bail!("usage: esp-pcap OUT.pcap KEYLOG [COUNT]"),
    };
    let provider = Arc::new(RustCrypto::new());
    let mut engine = EspEngine::with_config(provider.clone(), EspConfig::with_output(Output::Ip));
    let now = Instant::now();
    let sas = [
        sa_params(0x1001, AeadAlgorithm::Aes256Gcm, false, &provider)?,
        sa_params(0x1002, AeadAlgorithm::Aes128Gcm, true, &provider)?,
    ];

    let mut keylog = BufWriter::new(File::create(Path::new(keylog_path))?);
    writeln!(
        keylog,
        "# esp-pcap key log: each line is one tshark `-o` option. These keys decrypt the capture."
    )?;
    let mut ids = Vec::new();
    for p in &sas {
        let line = esp_sa_record(p).map_err(anyhow::Error::msg)?;
        writeln!(keylog, "{line}")?;
        ids.push(engine.install(now, p.clone())?);
    }
    keylog.flush()?;

    let mut pcap = Pcap::new(BufWriter::new(File::create(Path::new(pcap_path))?))?;
    let start = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as u64;
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (INNER_SRC.parse()?, INNER_DST.parse()?);
    let mut buf = vec![0u8; 2048];
    let mut written = 0u64;
    for seq in 1..=count {
        for (k, &sa) in ids.iter().enumerate() {
            // Identifier per SA, payload lengths varying so that padding varies too.
            let inner = echo_request(src, dst, 0x1000 + k as u16, seq, 40 + usize::from(seq));
            let head = engine.headroom(sa).context("SA")?;
            buf[head..head + inner.len()].copy_from_slice(&inner);
            let wire = engine.encapsulate(now, sa, &mut buf, head..head + inner.len())?;
            pcap.packet(start + written * 1000, &buf[wire])?;
            written += 1;
        }
    }
    pcap.out.flush()?;
    eprintln!(
        "esp-pcap: wrote {written} packets ({count} per SA, SPIs 0x1001 raw ESP, 0x1002 UDP 4500) to {pcap_path}, keys to {keylog_path}"
    );
    Ok(())
}

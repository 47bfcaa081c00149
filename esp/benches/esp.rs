//! ESP engine throughput against the raw provider AEAD, in one process run
//! (perf-anchors §3(d)): `cargo bench -p esp`.
//!
//! * raw seal: `AeadKey::seal_in_place` over a buffer as long as the ESP payload
//!   (inner + padding + trailer), 8-octet AAD, fresh nonce per call;
//! * encap: copy the inner packet into place + `EspEngine::encapsulate` (tunnel mode);
//! * raw open: copy a pristine ciphertext + `open_in_place`;
//! * decap: copy a pristine ESP packet + `EspEngine::decapsulate` (SA lookup, ESN inference,
//!   replay check and update, trailer and selector checks).
//!
//! The pristine inputs of both open sides come from a pool of about 256 KiB, so that the
//! figures measure the packet path rather than DRAM bandwidth.
//!
//! Each figure is the median of `REPS` repetitions of a batch of packets, raw and engine runs
//! interleaved so drift hits both alike. Ratios are engine throughput ÷ raw throughput.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esp::{Direction, EspEngine, EspSaParams, EspTransform, Lifetime, Mode};
use ipsec_core::crypto::{AeadAlgorithm, AeadKey};
use ipsec_core::{CryptoProvider, RustCrypto, Spi, TrafficSelector};

const REPS: usize = 15;
/// Packets per repetition: 8192, fewer for jumbo packets (same order of octets).
/// `ESP_BENCH_BATCH` overrides it (e.g. small batches under a profiler).
fn batch(size: usize) -> usize {
    match std::env::var("ESP_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => n,
        None if size > 2048 => 2048,
        None => 8192,
    }
}

/// Pristine input packets kept for the open side: about 256 KiB of them (at most 256).
fn pool(size: usize) -> usize {
    ((256 << 10) / size).clamp(16, 256)
}
const SPI: u32 = 0x1000_0001;

fn params(alg: AeadAlgorithm, keymat: &[u8], direction: Direction) -> EspSaParams {
    EspSaParams {
        spi: Spi(SPI),
        direction,
        mode: Mode::Tunnel,
        transform: EspTransform::aead_from_keymat(alg, keymat).unwrap(),
        esn: true,
        replay_window: 1024,
        lifetime: Lifetime::default(),
        encap: None,
        local_addr: "192.0.2.1".parse().unwrap(),
        remote_addr: "192.0.2.2".parse().unwrap(),
        ts_local: vec![TrafficSelector::any_v4()],
        ts_remote: vec![TrafficSelector::any_v4()],
    }
}

/// An IPv4/UDP packet of `len` octets (len ≥ 28).
fn inner_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ns_per_pkt(d: Duration, batch: usize) -> f64 {
    d.as_nanos() as f64 / batch as f64
}

struct Row {
    provider: &'static str,
    alg: &'static str,
    size: usize,
    batch: usize,
    seal: Duration,
    encap: Duration,
    open: Duration,
    decap: Duration,
}

fn bench<P: CryptoProvider>(
    provider: Arc<P>,
    provider_name: &'static str,
    alg: AeadAlgorithm,
    name: &'static str,
    size: usize,
) -> Row {
    let batch = batch(size);
    let reps = std::env::var("ESP_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REPS);
    let keymat: Vec<u8> = (0..alg.keymat_len() as u8).collect();
    let raw = provider.aead(alg, &keymat[..alg.key_len()]).unwrap();
    let inner = inner_packet(size);
    let esp_payload = (size + 2).div_ceil(4) * 4;

    let mut tx = EspEngine::new(provider.clone());
    let out = tx
        .install(Instant::now(), params(alg, &keymat, Direction::Outbound))
        .unwrap();
    let head = tx.headroom(out).unwrap();
    let tail = tx.tailroom(out, size).unwrap();
    let mut buf = vec![0u8; head + size + tail];

    // Pristine inputs for the open side: a pool of ESP packets (sequence numbers 1, 2, …)
    // and of raw ciphertexts, small enough to stay in cache: both sides copy their input
    // out of it, so the copy is in both figures and neither waits on DRAM.
    let pool = pool(size);
    let mut packets = Vec::with_capacity(pool);
    let mut raw_cts = Vec::with_capacity(pool);
    let now = Instant::now();
    for i in 0..pool {
        buf[head..head + size].copy_from_slice(&inner);
        let r = tx
            .encapsulate(now, out, &mut buf, head..head + size)
            .unwrap();
        packets.push(buf[r].to_vec());
        let mut ct = vec![0x5au8; esp_payload];
        let mut tag = [0u8; 16];
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
        raw.seal_in_place(&nonce, &[1; 8], &mut ct, &mut tag)
            .unwrap();
        raw_cts.push((ct, tag, nonce));
    }
    let pkt_len = packets[0].len();

    let (mut seal_t, mut encap_t, mut open_t, mut decap_t) = (vec![], vec![], vec![], vec![]);
    let mut seal_buf = vec![0x5au8; esp_payload];
    let mut open_buf = vec![0u8; esp_payload];
    let mut rx_buf = vec![0u8; pkt_len];
    let mut nonce_ctr = 0u64;
    for _ in 0..reps {
        // Raw seal.
        let t = Instant::now();
        for _ in 0..batch {
            nonce_ctr += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&nonce_ctr.to_be_bytes());
            let mut tag = [0u8; 16];
            raw.seal_in_place(&nonce, &[1; 8], &mut seal_buf, &mut tag)
                .unwrap();
            black_box(&tag);
        }
        seal_t.push(t.elapsed());

        // Encapsulate (with the copy of the inner packet into place).
        let t = Instant::now();
        for _ in 0..batch {
            buf[head..head + size].copy_from_slice(&inner);
            let r = tx
                .encapsulate(now, out, &mut buf, head..head + size)
                .unwrap();
            black_box(r);
        }
        encap_t.push(t.elapsed());

        // Raw open of a copy, and decapsulation of a copy, in rounds over the pool; each
        // decapsulation round gets a fresh inbound SA (installed untimed) so that every
        // packet is new to its replay window.
        let (mut open_d, mut decap_d) = (Duration::ZERO, Duration::ZERO);
        let mut done = 0;
        while done < batch {
            let n = pool.min(batch - done);
            let t = Instant::now();
            for (ct, tag, nonce) in &raw_cts[..n] {
                open_buf.copy_from_slice(ct);
                raw.open_in_place(nonce, &[1; 8], &mut open_buf, tag)
                    .unwrap();
                black_box(&open_buf);
            }
            open_d += t.elapsed();

            let mut rx = EspEngine::new(provider.clone());
            rx.install(now, params(alg, &keymat, Direction::Inbound))
                .unwrap();
            let t = Instant::now();
            for p in &packets[..n] {
                rx_buf.copy_from_slice(p);
                let d = rx.decapsulate(now, &mut rx_buf).unwrap();
                black_box(d);
            }
            decap_d += t.elapsed();
            done += n;
        }
        open_t.push(open_d);
        decap_t.push(decap_d);
    }
    Row {
        provider: provider_name,
        alg: name,
        size,
        batch,
        seal: median(seal_t),
        encap: median(encap_t),
        open: median(open_t),
        decap: median(decap_t),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments select rows: every one must be a
    // substring of "provider suite size" (e.g. `cargo bench -p esp -- aws-lc " 64"`).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let selected = |provider: &str, suite: &str, size: usize| {
        let label = format!("{provider} {suite} {size}");
        filters.iter().all(|f| label.contains(f.as_str()))
    };
    let mut rows = Vec::new();
    for (alg, name) in [
        (AeadAlgorithm::Aes256Gcm, "AES-256-GCM"),
        (AeadAlgorithm::Aes128Gcm, "AES-128-GCM"),
        (AeadAlgorithm::ChaCha20Poly1305, "ChaCha20-Poly1305"),
    ] {
        for size in [64, 512, 1420, 9000] {
            if selected("RustCrypto", name, size) {
                rows.push(bench(
                    Arc::new(RustCrypto::new()),
                    "RustCrypto",
                    alg,
                    name,
                    size,
                ));
            }
            #[cfg(feature = "aws-lc")]
            if selected("aws-lc-rs", name, size) {
                rows.push(bench(
                    Arc::new(ipsec_core::AwsLc::new()),
                    "aws-lc-rs",
                    alg,
                    name,
                    size,
                ));
            }
        }
    }
    println!(
        "ESP engine vs raw AEAD of the same provider, median of {REPS} x 8192 packets (2048 at 9000 B), ns/packet (GB/s of inner payload)"
    );
    println!(
        "| provider | suite | inner B | raw seal | encap | encap/raw | raw open+copy | decap | decap/raw |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let ns = |d: Duration| ns_per_pkt(d, r.batch);
        let gbps = |d: Duration| r.size as f64 / ns(d);
        println!(
            "| {} | {} | {} | {:.0} ({:.2}) | {:.0} ({:.2}) | {:.2} | {:.0} ({:.2}) | {:.0} ({:.2}) | {:.2} |",
            r.provider,
            r.alg,
            r.size,
            ns(r.seal),
            gbps(r.seal),
            ns(r.encap),
            gbps(r.encap),
            r.seal.as_secs_f64() / r.encap.as_secs_f64(),
            ns(r.open),
            gbps(r.open),
            ns(r.decap),
            gbps(r.decap),
            r.open.as_secs_f64() / r.decap.as_secs_f64(),
        );
    }
}

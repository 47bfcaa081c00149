//! ESP engine throughput against the raw provider AEAD, in one process run
//! (perf-anchors §3(d)): `cargo bench -p esp [--features aws-lc] [-- FILTER…]`.
//!
//! * raw seal: copy the inner packet into a buffer as long as the ESP payload (inner +
//!   padding + trailer) + `AeadKey::seal_in_place` over it, 8-octet AAD, fresh nonce;
//! * encap: copy the inner packet into place + `EspEngine::encapsulate` (tunnel mode);
//! * raw open: copy a pristine ciphertext + `open_in_place`;
//! * decap: copy a pristine ESP packet + `EspEngine::decapsulate` (SA lookup, ESN inference,
//!   replay check and update, trailer and selector checks).
//!
//! The pristine inputs of both open sides come from a pool of about 256 KiB, so that the
//! figures measure the packet path rather than DRAM bandwidth.
//!
//! The four loops are interleaved in rounds of one pool's worth of packets (16 to 256), each
//! round timed on its own: a round is far shorter than a scheduler time slice, so on a busy
//! machine most rounds run undisturbed, and the median over all rounds ignores the others.
//! Figures are those medians (ns per packet, GB/s of inner packet); each ratio is the median
//! over rounds of raw time ÷ engine time in the same round, so drift hits both alike.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esp::{Direction, EspEngine, EspSaParams, EspTransform, Lifetime, Mode};
use ipsec_core::crypto::{AeadAlgorithm, AeadKey};
use ipsec_core::{CryptoProvider, RustCrypto, Spi, TrafficSelector};

/// Packets per row: 8192 × 32, fewer for jumbo packets (same order of octets).
/// `ESP_BENCH_PACKETS` overrides it (e.g. fewer under a profiler).
fn packet_count(size: usize) -> usize {
    match std::env::var("ESP_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => n,
        None if size > 2048 => 2048 * 32,
        None => 8192 * 32,
    }
}

/// Pristine input packets kept for the open side, and packets per round: about 256 KiB of
/// them (16 to 256).
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

/// `len` octets of `mem` placed so that octet `at` (where the ciphertext starts) is
/// 64-octet aligned: the raw and engine buffers then meet the cipher at the same alignment
/// (AVX-512 code pays for cache-line splits otherwise).
fn aligned(mem: &mut [u8], len: usize, at: usize) -> &mut [u8] {
    let addr = mem.as_ptr() as usize + at;
    let skip = addr.next_multiple_of(64) - addr;
    &mut mem[skip..skip + len]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn per_packet(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

struct Row {
    provider: &'static str,
    alg: &'static str,
    size: usize,
    /// Median ns per packet.
    seal: f64,
    encap: f64,
    open: f64,
    decap: f64,
    /// Median per-round raw ÷ engine time.
    encap_ratio: f64,
    decap_ratio: f64,
}

fn bench<P: CryptoProvider>(
    provider: Arc<P>,
    provider_name: &'static str,
    alg: AeadAlgorithm,
    name: &'static str,
    size: usize,
) -> Row {
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
    let mut buf_mem = vec![0u8; head + size + tail + 64];
    let buf = aligned(&mut buf_mem, head + size + tail, head);

    // Pristine inputs for the open side: a pool of ESP packets (sequence numbers 1, 2, …)
    // and of raw ciphertexts, small enough to stay in cache: both sides copy their input
    // out of it, so the copy is in both figures and neither waits on DRAM.
    let pool = pool(size);
    let mut packets = Vec::with_capacity(pool);
    let mut raw_cts = Vec::with_capacity(pool);
    let now = Instant::now();
    for i in 0..pool {
        buf[head..head + size].copy_from_slice(&inner);
        let r = tx.encapsulate(now, out, buf, head..head + size).unwrap();
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

    let mut t = [vec![], vec![], vec![], vec![]];
    let (mut encap_ratio, mut decap_ratio) = (vec![], vec![]);
    let (mut seal_mem, mut open_mem, mut rx_mem) = (
        vec![0x5au8; esp_payload + 64],
        vec![0u8; esp_payload + 64],
        vec![0u8; pkt_len + 64],
    );
    let seal_buf = aligned(&mut seal_mem, esp_payload, 0);
    let open_buf = aligned(&mut open_mem, esp_payload, 0);
    let rx_buf = aligned(&mut rx_mem, pkt_len, head);
    let mut nonce_ctr = 0u64;
    let rounds = packet_count(size).div_ceil(pool);
    // One untimed warm-up round, then the measured ones.
    for round in 0..=rounds {
        // Raw seal of a copy of the payload (the engine's input is copied into place too).
        let t0 = Instant::now();
        for _ in 0..pool {
            seal_buf[..size].copy_from_slice(&inner);
            nonce_ctr += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&nonce_ctr.to_be_bytes());
            let mut tag = [0u8; 16];
            raw.seal_in_place(&nonce, &[1; 8], seal_buf, &mut tag)
                .unwrap();
            black_box(&tag);
        }
        let seal = t0.elapsed();

        // Encapsulate (with the copy of the inner packet into place).
        let t0 = Instant::now();
        for _ in 0..pool {
            buf[head..head + size].copy_from_slice(&inner);
            let r = tx.encapsulate(now, out, buf, head..head + size).unwrap();
            black_box(r);
        }
        let encap = t0.elapsed();

        // Raw open of a copy.
        let t0 = Instant::now();
        for (ct, tag, nonce) in &raw_cts {
            open_buf.copy_from_slice(ct);
            raw.open_in_place(nonce, &[1; 8], open_buf, tag).unwrap();
            black_box(&open_buf);
        }
        let open = t0.elapsed();

        // Decapsulate a copy, with a fresh inbound SA (installed untimed) so that every
        // packet is new to the replay window.
        let mut rx = EspEngine::new(provider.clone());
        rx.install(now, params(alg, &keymat, Direction::Inbound))
            .unwrap();
        let t0 = Instant::now();
        for p in &packets {
            rx_buf.copy_from_slice(p);
            let d = rx.decapsulate(now, rx_buf).unwrap();
            black_box(d);
        }
        let decap = t0.elapsed();

        if round > 0 {
            for (v, d) in t.iter_mut().zip([seal, encap, open, decap]) {
                v.push(per_packet(d, pool));
            }
            encap_ratio.push(seal.as_secs_f64() / encap.as_secs_f64());
            decap_ratio.push(open.as_secs_f64() / decap.as_secs_f64());
        }
    }
    let [seal, encap, open, decap] = t.map(median);
    Row {
        provider: provider_name,
        alg: name,
        size,
        seal,
        encap,
        open,
        decap,
        encap_ratio: median(encap_ratio),
        decap_ratio: median(decap_ratio),
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
        "ESP engine vs raw AEAD of the same provider: medians over rounds, ns/packet (GB/s of inner packet)"
    );
    println!(
        "| provider | suite | inner B | raw seal+copy | encap+copy | encap/raw | raw open+copy | decap+copy | decap/raw |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let cell = |ns: f64| format!("{ns:.0} ({:.2})", r.size as f64 / ns);
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {} | {} | {:.2} |",
            r.provider,
            r.alg,
            r.size,
            cell(r.seal),
            cell(r.encap),
            r.encap_ratio,
            cell(r.open),
            cell(r.decap),
            r.decap_ratio,
        );
    }
}

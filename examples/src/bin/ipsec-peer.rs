//! `ipsec-peer`: an IPsec peer on a TUN device.
//!
//! ```text
//! ipsec-peer --config peer.toml [--keylog keys.txt] [--stats-interval 10s] [--check]
//!            [--threads 1|2] [--offload on|off] [--provider rustcrypto|aws-lc]
//! RUST_LOG=debug ipsec-peer --config peer.toml
//! ```
//!
//! Inner packets routed into the TUN device are protected with ESP in UDP (RFC 3948) and
//! sent to the peer; ESP received on UDP 4500 is decrypted and written to the TUN device.
//! SAs come from `[[manual_sa]]` entries (static keys) and, once the IKE endpoint is wired in
//! (see `examples::ike_glue`), from IKEv2.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use examples::config::{Config, parse_duration};
use examples::esp_glue::Provider;
use examples::ike_endpoint::Ike;
use examples::ike_glue::{ControlPlane, NoIke};
use examples::keylog::KeyLog;
use examples::peer::{self, Options, Peer};
use tracing_subscriber::EnvFilter;

/// An IPsec (IKEv2 + ESP) peer on a TUN device.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file (TOML, swanctl vocabulary).
    #[arg(short, long)]
    config: PathBuf,
    /// Write every SA's keys to FILE in Wireshark's esp_sa / ikev2_decryption_table format
    /// (one tshark `-o` option per line). Debugging only.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
    /// Period of the per-SA statistics lines ("0" disables them).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    stats_interval: Duration,
    /// Only check the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Threads of the packet path: 2 runs the inbound direction (UDP → ESP → TUN) on its
    /// own thread, 1 keeps everything on one.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    threads: u8,
    /// TUN offload: virtio-net header, TSO/USO super-segments read and split, TCP segments
    /// coalesced on write ("on" or "off").
    #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    offload: bool,
    /// ESP crypto provider: "rustcrypto", or "aws-lc" (built with the `aws-lc` feature).
    #[arg(long, default_value = "rustcrypto")]
    provider: Provider,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!(
            "{}: ok ({} connections, {} secrets, {} manual SAs)",
            cli.config.display(),
            config.connections.len(),
            config.secrets.len(),
            config.manual_sa.len()
        );
        return ExitCode::SUCCESS;
    }
    match run(cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let keylog = match &cli.keylog {
        Some(p) => KeyLog::create(p).with_context(|| format!("opening key log {}", p.display()))?,
        None => KeyLog::disabled(),
    };
    let opts = Options {
        stats_interval: (!cli.stats_interval.is_zero()).then_some(cli.stats_interval),
        offload: cli.offload,
        threads: usize::from(cli.threads),
        provider: cli.provider,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The control plane: the IKEv2 endpoint when connections are configured, else none
    // (static keys only).
    if config.connections.is_empty() {
        rt.block_on(serve(NoIke::default(), keylog, &config, &opts))
    } else {
        let ike = Ike::new(&config)?;
        rt.block_on(serve(ike, keylog, &config, &opts))
    }
}

async fn serve<C: ControlPlane>(
    ike: C,
    keylog: KeyLog,
    config: &Config,
    opts: &Options,
) -> anyhow::Result<()> {
    let io = peer::open_io(config, opts)?;
    let mut p = Peer::new(ike, keylog, &io, opts)?;
    p.install_manual(&io, Instant::now(), config)?;
    p.run(io, config, opts).await
}

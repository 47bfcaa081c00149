//! The TUN device and the routes that steer the remote traffic selectors into it.
//!
//! The device, its MTU and addresses are set up by `tun-rs` (ioctls and netlink). Routes are
//! added with `ip route replace <prefix> dev <tun> [src <tun address>]` (iproute2), one per
//! CIDR block covering each remote selector's address range; protocol and port
//! restrictions are not routing concepts and are enforced by the outbound policy table
//! instead. Routes die with the device when the process exits, so there is nothing to undo.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use anyhow::{Context, bail};
use ipsec_core::TrafficSelector;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tun_rs::{DeviceBuilder, SyncDevice};

use crate::config::{IpPrefix, TunConfig};

/// Packets the kernel queues for the TUN reader.
pub const TX_QUEUE_LEN: u32 = 4096;

/// Largest UDP payload of one GSO send (the 64 KiB UDP length, less headroom).
pub const GSO_MAX_BYTES: usize = 65000;

/// Most ESP overhead a segment of a super-segment gets (header, longest IV, longest pad,
/// trailer and ICV): with offload the device's `gso_max_size` is capped so that one
/// super-segment, each segment grown by this, still fits one GSO send.
const ESP_MAX_OVERHEAD: usize = 8 + 16 + esp::MAX_TAILROOM;

/// Longest IP + TCP header of a super-segment (IPv4 or IPv6 with options, 60 + 60).
const MAX_SUPER_HDR: usize = 120;

/// The `gso_max_size` for an MTU: a super-segment of that size has at most `k` segments,
/// `k` being how many ESP packets of a full segment fit [`GSO_MAX_BYTES`]. Its headers count
/// once, each segment's payload is the MTU less the headers: `hdr + k * (mtu - hdr)`, least
/// for the longest headers.
pub fn gso_max_size(mtu: u16) -> usize {
    let mtu = usize::from(mtu);
    let k = GSO_MAX_BYTES / (mtu + ESP_MAX_OVERHEAD);
    MAX_SUPER_HDR + k * mtu.saturating_sub(MAX_SUPER_HDR).max(1)
}

/// The TUN device, registered with the main thread's runtime for readability only (the
/// inbound loop writes to it without a registration: TUN writes never block). `ERROR` is in
/// the interest because a deleted interface reports only `EPOLLERR`.
pub type TunDevice = AsyncFd<SyncDevice>;

/// What the main loop waits for on the TUN device.
pub const TUN_INTEREST: Interest = Interest::READABLE.add(Interest::ERROR);

/// Creates the TUN device with its MTU and addresses, up. With `offload` the device has
/// `IFF_VNET_HDR` and TSO/USO enabled: reads carry a virtio-net header and may be TCP or UDP
/// super-segments (up to 64 KiB) to split; writes carry a virtio-net header and may be
/// coalesced segments.
pub fn open(cfg: &TunConfig, offload: bool) -> anyhow::Result<TunDevice> {
    let mut b = DeviceBuilder::new()
        .name(cfg.name.clone())
        .mtu(cfg.mtu)
        .offload(offload)
        // The default (500) overflows under TCP bursts when the reader is briefly busy.
        .tx_queue_len(TX_QUEUE_LEN)
        .enable(true);
    // The builder takes one IPv4 address; further ones are added after creation.
    let mut first_v4 = true;
    let mut extra_v4 = Vec::new();
    for a in &cfg.addresses {
        match a.addr {
            IpAddr::V6(v6) => b = b.ipv6(v6, a.len),
            IpAddr::V4(v4) if first_v4 => {
                b = b.ipv4(v4, a.len, None);
                first_v4 = false;
            }
            IpAddr::V4(v4) => extra_v4.push((v4, a.len)),
        }
    }
    let dev = b
        .build_sync()
        .with_context(|| format!("creating TUN device {}", cfg.name))?;
    for (v4, len) in extra_v4 {
        dev.add_address_v4(v4, len)
            .with_context(|| format!("adding {v4}/{len} to {}", cfg.name))?;
    }
    if offload {
        // One super-segment, one GSO send (instead of two, the second nearly empty).
        let size = gso_max_size(cfg.mtu).to_string();
        let ok = Command::new("ip")
            .args(["link", "set", "dev", &cfg.name, "gso_max_size", &size])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!(dev = %cfg.name, %size, "could not cap gso_max_size");
        }
    }
    dev.set_nonblocking(true)?;
    Ok(crate::net::register(dev, TUN_INTEREST)?)
}

/// The CIDR blocks that exactly cover a selector's address range.
pub fn covering_prefixes(ts: &TrafficSelector) -> Vec<IpPrefix> {
    let v4 = ts.is_ipv4();
    let width: u32 = if v4 { 32 } else { 128 };
    let to = |a: IpAddr| match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    let from = |x: u128| -> IpAddr {
        if v4 {
            IpAddr::V4(Ipv4Addr::from(x as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(x))
        }
    };
    let (mut lo, hi) = (to(ts.start()), to(ts.end()));
    let mut out = Vec::new();
    loop {
        // Largest block aligned at `lo` that stays within `hi`.
        let mut bits = if lo == 0 {
            width
        } else {
            lo.trailing_zeros().min(width)
        };
        while bits > 0 {
            let span = if bits == 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            if lo.checked_add(span).is_some_and(|e| e <= hi) {
                break;
            }
            bits -= 1;
        }
        out.push(IpPrefix {
            addr: from(lo),
            len: (width - bits) as u8,
        });
        let span = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        match lo.checked_add(span).and_then(|e| e.checked_add(1)) {
            Some(next) if next <= hi => lo = next,
            _ => break,
        }
    }
    out
}

/// Routes every selector's address range into `ifname` (`ip route replace`), with the
/// device's first address of the same family as the preferred source. Returns the
/// prefixes routed.
pub fn add_routes(
    ifname: &str,
    selectors: &[TrafficSelector],
    tun_addrs: &[IpPrefix],
) -> anyhow::Result<Vec<IpPrefix>> {
    let mut done = Vec::new();
    for ts in selectors {
        for p in covering_prefixes(ts) {
            if done.contains(&p) {
                continue;
            }
            let fam = if p.addr.is_ipv4() { "-4" } else { "-6" };
            let src = tun_addrs
                .iter()
                .find(|a| a.addr.is_ipv4() == p.addr.is_ipv4())
                .map(|a| a.addr.to_string());
            // A fresh IPv6 address can still be tentative, which makes `src` invalid for a
            // moment: retry, then fall back to letting the kernel choose the source.
            let mut attempt = 0;
            loop {
                let with_src = if attempt < 20 { src.as_deref() } else { None };
                let mut cmd = Command::new("ip");
                cmd.args([fam, "route", "replace", &p.to_string(), "dev", ifname]);
                if let Some(a) = with_src {
                    cmd.args(["src", a]);
                }
                let out = cmd
                    .output()
                    .context("running `ip route` (is iproute2 installed?)")?;
                if out.status.success() {
                    break;
                }
                let err = String::from_utf8_lossy(&out.stderr);
                if with_src.is_some() && err.contains("Invalid source address") {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    continue;
                }
                bail!(
                    "`ip {fam} route replace {p} dev {ifname}` failed: {}",
                    err.trim()
                );
            }
            tracing::info!(route = %p, dev = ifname, "route added");
            done.push(p);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cover(s: &str) -> Vec<String> {
        covering_prefixes(&s.parse().unwrap())
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_capped_super_segment_fits_one_gso_send() {
        for mtu in [576u16, 1280, 1400, 1420, 1500, 9000] {
            let cap = gso_max_size(mtu);
            let m = usize::from(mtu);
            assert!(cap >= m, "mtu {mtu}: a full segment still fits");
            // IPv6 + TCP, with timestamps, IPv4 + TCP, and the longest headers.
            for hdr in [60, 72, 40, 120] {
                let segments = (cap - hdr).div_ceil(m - hdr);
                // Each segment at most the MTU, each grown by the largest ESP overhead.
                assert!(
                    segments * (m + ESP_MAX_OVERHEAD) <= GSO_MAX_BYTES,
                    "mtu {mtu} hdr {hdr}: {segments} segments"
                );
            }
        }
        assert_eq!(gso_max_size(1400), 120 + 44 * 1280);
    }

    #[test]
    fn prefixes() {
        assert_eq!(cover("fd02::1/128"), ["fd02::1/128"]);
        assert_eq!(cover("fd02::/64"), ["fd02::/64"]);
        assert_eq!(cover("::/0"), ["::/0"]);
        assert_eq!(cover("0.0.0.0/0"), ["0.0.0.0/0"]);
        assert_eq!(
            cover("10.0.0.1-10.0.0.6"),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(
            cover("255.255.255.254-255.255.255.255"),
            ["255.255.255.254/31"]
        );
        assert_eq!(
            cover(
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe..ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            ),
            ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"]
        );
        assert_eq!(cover("10.0.0.0/8[tcp/80]"), ["10.0.0.0/8"]);
    }
}

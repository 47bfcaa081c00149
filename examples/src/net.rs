//! UDP sockets for IKE (port 500) and NAT-T / ESP-in-UDP (port 4500, RFC 3948).
//!
//! One socket per configured local address and port. IPv6 sockets are `IPV6_V6ONLY` so that
//! IPv4 sockets on the same port can coexist; `SO_REUSEADDR` lets a wildcard and a specific
//! bind share a port. Socket buffers are raised to 4 MiB (the kernel caps them at
//! `net.core.{r,w}mem_max`).
//!
//! A socket is registered with a runtime only by the thread that reads it, and only for
//! readability: sends are non-blocking calls that drop on a full buffer. A registration for
//! writability, or by a thread that does not read, would wake that thread on every packet
//! another thread sends or receives on the same socket (tokio registers edge-triggered
//! `EPOLLIN | EPOLLOUT` by default, and every freed send buffer is an `EPOLLOUT` edge).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use ipsec_core::natt::NATT_PORT;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Config, unspecified_like};

/// One bound UDP socket.
#[derive(Debug)]
pub struct UdpSock {
    /// Its readability registration, for the sockets the main loop reads (plain IKE);
    /// dropped (deregistered) before the socket.
    pub reader: Option<AsyncFd<Arc<std::net::UdpSocket>>>,
    /// The socket (non-blocking).
    pub sock: Arc<std::net::UdpSocket>,
    /// What it is bound to.
    pub local: SocketAddr,
    /// True if datagrams carry RFC 3948 framing (ESP, or IKE behind the non-ESP marker);
    /// false for plain IKE on port 500.
    pub natt: bool,
}

/// Descriptors that own what they refer to: registering one of them (the `AsyncFd` then
/// owns it) keeps the descriptor open and unchanged for as long as the registration lives.
pub trait OwnsFd: AsRawFd {}
impl OwnsFd for std::net::UdpSocket {}
impl OwnsFd for Arc<std::net::UdpSocket> {}
impl OwnsFd for tun_rs::SyncDevice {}

/// Registers `io` with the current tokio runtime for `interest` only (tokio's default is
/// readable and writable, see the module docs).
pub fn register<T: OwnsFd>(io: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T: OwnsFd` owns its descriptor, and the `AsyncFd` owns `io` until it is
    // dropped, so the descriptor stays open and refers to the same file all along.
    unsafe { AsyncFd::register_with_interest(io, interest) }.map_err(|e| e.into_parts().1)
}

/// Socket buffer size requested for every socket.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Binds one non-blocking UDP socket; a port-500 socket (`!natt`) is registered for
/// readability with the current tokio runtime, the NAT-T ones are read by the inbound loop
/// through their own registration (see [`clone_std`]).
pub fn bind(local: SocketAddr, natt: bool) -> io::Result<UdpSock> {
    let s = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    if local.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    // Best effort: a smaller buffer only costs throughput.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&local.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind {local}: {e}")))?;
    let sock = Arc::new(std::net::UdpSocket::from(s));
    let reader = if natt {
        None
    } else {
        Some(register(sock.clone(), Interest::READABLE)?)
    };
    Ok(UdpSock {
        reader,
        sock,
        local,
        natt,
    })
}

/// A second descriptor of the same socket (`dup`), to register with another thread's
/// runtime. Socket options are shared; both descriptors may send and receive.
pub fn clone_std(s: &UdpSock) -> io::Result<std::net::UdpSocket> {
    s.sock.try_clone()
}

/// `SOL_UDP` and `UDP_SEGMENT` (linux/udp.h): the segment size of a UDP GSO send.
const SOL_UDP: i32 = 17;
const UDP_SEGMENT: i32 = 103;

/// Sends `bufs` to `dst` as one UDP GSO train (one `sendmsg`): the kernel cuts the
/// concatenation every `segment` octets, so every buffer but the last must be exactly
/// `segment` long and the last at most that.
pub fn send_gso(
    sock: &std::net::UdpSocket,
    dst: SocketAddr,
    bufs: &[io::IoSlice<'_>],
    segment: usize,
) -> io::Result<()> {
    let seg = u16::try_from(segment).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // One cmsghdr { cmsg_len: usize, cmsg_level: i32, cmsg_type: i32 } and its u16, padded
    // to CMSG_SPACE(2).
    const HDR: usize = std::mem::size_of::<usize>() + 8;
    let mut control = [0u8; (HDR + 2 + 7) & !7];
    control[..std::mem::size_of::<usize>()].copy_from_slice(&(HDR + 2).to_ne_bytes());
    control[HDR - 8..HDR - 4].copy_from_slice(&SOL_UDP.to_ne_bytes());
    control[HDR - 4..HDR].copy_from_slice(&UDP_SEGMENT.to_ne_bytes());
    control[HDR..HDR + 2].copy_from_slice(&seg.to_ne_bytes());
    let addr = socket2::SockAddr::from(dst);
    let msg = socket2::MsgHdr::new()
        .with_addr(&addr)
        .with_buffers(bufs)
        .with_control(&control);
    socket2::SockRef::from(sock).sendmsg(&msg, 0).map(|_| ())
}

/// The sockets `config` needs: for each connection, every local address (or the wildcard
/// of each remote address family) on `local_port` and on 4500; for each manual SA, its
/// local address and port. A port used for NAT-T framing anywhere is framed everywhere.
pub fn plan(config: &Config) -> Vec<(SocketAddr, bool)> {
    let mut out: Vec<(SocketAddr, bool)> = Vec::new();
    let mut add = |a: SocketAddr, natt: bool| match out.iter_mut().find(|(b, _)| *b == a) {
        Some(e) => e.1 |= natt,
        None => out.push((a, natt)),
    };
    for c in config.connections.values() {
        let locals: Vec<IpAddr> = if c.local_addrs.is_empty() {
            let mut v: Vec<IpAddr> = c
                .remote_addrs
                .iter()
                .map(|r| unspecified_like(*r))
                .collect();
            v.dedup();
            v
        } else {
            c.local_addrs.clone()
        };
        for a in locals {
            add(SocketAddr::new(a, c.local_port), c.local_port == NATT_PORT);
            add(SocketAddr::new(a, NATT_PORT), true);
        }
    }
    for m in &config.manual_sa {
        add(SocketAddr::new(m.local_addr, m.local_port), true);
    }
    out
}

/// The socket to send from for `local`: an exact bind, else a wildcard bind of the same
/// family and port.
pub fn select(socks: &[UdpSock], local: SocketAddr) -> Option<usize> {
    socks.iter().position(|s| s.local == local).or_else(|| {
        socks.iter().position(|s| {
            s.local.port() == local.port()
                && s.local.ip().is_unspecified()
                && s.local.is_ipv4() == local.is_ipv4()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn plan_and_select() {
        let src = r#"
[connections.a]
local_addrs = "fd00::1"
remote_addrs = "fd00::2"
[connections.a.local]
auth = "psk"
[connections.a.remote]
auth = "psk"
[connections.b]
remote_addrs = "10.0.0.2, 10.0.0.3"
local_port = 4500
[connections.b.local]
auth = "psk"
[connections.b.remote]
auth = "psk"
[[manual_sa]]
direction = "in"
spi = 4096
esp = "aes128gcm16"
key = "0001020304050607080910111213141516171819"
local_addr = "fd00::1"
remote_addr = "fd00::2"
local_port = 4600
local_ts = "fd01::1"
remote_ts = "fd02::1"
"#;
        let c = Config::parse_with(Path::new("t.toml"), src, Path::new("."), &|_| None).unwrap();
        let p: Vec<String> = plan(&c).iter().map(|(a, n)| format!("{a}/{n}")).collect();
        assert_eq!(
            p,
            [
                "[fd00::1]:500/false",
                "[fd00::1]:4500/true",
                "0.0.0.0:4500/true",
                "[fd00::1]:4600/true"
            ]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bind_and_select() {
        let a = bind("[::1]:0".parse().unwrap(), true).unwrap();
        let port = a.sock.local_addr().unwrap().port();
        let wild = bind(SocketAddr::new("::".parse().unwrap(), port), true).unwrap();
        let v4 = bind(SocketAddr::new("0.0.0.0".parse().unwrap(), port), false).unwrap();
        let socks = [
            UdpSock {
                local: SocketAddr::new("::1".parse().unwrap(), port),
                ..a
            },
            wild,
            v4,
        ];
        let l = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(select(&socks, l(&format!("[::1]:{port}"))), Some(0));
        assert_eq!(select(&socks, l(&format!("[fd00::9]:{port}"))), Some(1));
        assert_eq!(select(&socks, l(&format!("10.0.0.1:{port}"))), Some(2));
        assert_eq!(select(&socks, l("[::1]:1")), None);
    }

    #[test]
    fn gso_sends_arrive_as_separate_datagrams() {
        let rx = std::net::UdpSocket::bind("[::1]:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let tx = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let (a, b, c) = ([1u8; 300], [2u8; 300], [3u8; 120]);
        let bufs = [
            io::IoSlice::new(&a),
            io::IoSlice::new(&b),
            io::IoSlice::new(&c),
        ];
        send_gso(&tx, rx.local_addr().unwrap(), &bufs, 300).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(from, tx.local_addr().unwrap());
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, vec![a.to_vec(), b.to_vec(), c.to_vec()]);
        // A segment size the buffers do not follow is the caller's bug, refused by the
        // kernel or cut at `segment`: never a panic here.
        let _ = send_gso(&tx, rx.local_addr().unwrap(), &bufs, 70000);
    }
}

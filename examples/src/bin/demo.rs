//! The main demo: no root, no network. Two peers in one process negotiate IKEv2 over an
//! in-memory link (IKE_SA_INIT, IKE_AUTH with PSK, AES-256-GCM, X25519), install the Child
//! SA into two ESP engines, carry real IPv6/UDP packets through ESP in both directions,
//! and print what happened.
//!
//! It is also the shortest complete example of the run loop: after every input, drain IKE
//! events (install ESP SAs) before sending what IKE wants to send, then sleep until the
//! earliest deadline. Here "sleep" is a jump of a virtual clock.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use esp::{EspEngine, SaId};
use ike::message::ProtocolId;
use ike::proposal::parse_proposals;
use ike::{ChildConfig, ChildSaId, Datagram, Endpoint, EndpointConfig, Event, PeerConfig};
use ipsec_core::natt::{UdpPayload, classify_udp_4500};
use ipsec_core::{RustCrypto, SecretBytes};

struct Host {
    name: &'static str,
    ip: IpAddr,
    ike: Endpoint<RustCrypto>,
    esp: EspEngine<RustCrypto>,
    sas: HashMap<ChildSaId, (SaId, SaId, ike::ChildSaInfo)>,
    /// Rekey responder: new inbound SAs installed ahead of their Child SA.
    early_inbound: HashMap<ChildSaId, SaId>,
    received: Vec<Vec<u8>>,
}

type Wire = VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>;

fn peer(name: &str, local: &str, remote: &str, local_ts: &str, remote_ts: &str) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        local_id: ike::config::parse_identity(local).unwrap(),
        remote_id: Some(ike::config::parse_identity(remote).unwrap()),
        psk: SecretBytes::from_slice(b"demo pre-shared key, 32 octets!!"),
        remote_addrs: vec![remote.parse().unwrap()],
        ike_proposals: parse_proposals(ProtocolId::IKE, "aes256gcm16-prfsha256-x25519").unwrap(),
        force_encap: true,
        dpd_delay: Some(Duration::from_secs(30)),
        initial_contact: true,
        rekey_time: None,
        life_time: None,
        children: vec![ChildConfig::new(
            "net",
            vec![local_ts.parse().unwrap()],
            vec![remote_ts.parse().unwrap()],
            parse_proposals(ProtocolId::ESP, "aes256gcm16").unwrap(),
        )],
    }
}

impl Host {
    fn new(name: &'static str, ip: &str, config: PeerConfig) -> (Self, Arc<PeerConfig>) {
        let config = Arc::new(config);
        let provider = Arc::new(RustCrypto::new());
        let ep = EndpointConfig {
            peers: vec![config.clone()],
            ..EndpointConfig::default()
        };
        let host = Host {
            name,
            ip: ip.parse().unwrap(),
            ike: Endpoint::new(Arc::new(ep), provider.clone()),
            esp: EspEngine::new(provider),
            sas: HashMap::new(),
            early_inbound: HashMap::new(),
            received: Vec::new(),
        };
        (host, config)
    }

    /// The run loop's drain step: events first (install keys), then datagrams.
    fn drain(&mut self, now: Instant, wire: &mut Wire) {
        while let Some(event) = self.ike.poll_event() {
            match event {
                Event::IkeSaEstablished {
                    remote, suite, nat, ..
                } => {
                    println!(
                        "  [{}] IKE SA established with {remote}: {suite}, NAT {nat:?}",
                        self.name
                    )
                }
                Event::ChildSaInboundReady {
                    id,
                    inbound,
                    replaces,
                    ..
                } => {
                    // We answered a rekey: receive on the new SA now, send on the old one
                    // until the peer has moved over.
                    let sa = self
                        .esp
                        .install(now, (*inbound).clone())
                        .expect("install inbound");
                    self.early_inbound.insert(id, sa);
                    println!(
                        "  [{}] rekey of {replaces:?}: new inbound SA {} ready",
                        self.name, inbound.spi
                    );
                }
                Event::ChildSaEstablished(c) => {
                    let inbound = match self.early_inbound.remove(&c.id) {
                        Some(sa) => sa,
                        None => self
                            .esp
                            .install(now, c.inbound.clone())
                            .expect("install inbound"),
                    };
                    let outbound = self
                        .esp
                        .install(now, c.outbound.clone())
                        .expect("install outbound");
                    println!(
                        "  [{}] Child SA {:?}{} {}: SPIs in {} out {}, {} === {}, {:?}{}",
                        self.name,
                        c.name,
                        c.replaces
                            .map_or(String::new(), |r| format!(" (replaces {r:?})")),
                        c.suite,
                        c.inbound.spi,
                        c.outbound.spi,
                        c.ts_local[0],
                        c.ts_remote[0],
                        c.mode,
                        if c.outbound.encap.is_some() {
                            ", ESP in UDP 4500"
                        } else {
                            ""
                        },
                    );
                    self.sas.insert(c.id, (inbound, outbound, *c));
                }
                Event::ChildSaDeleted {
                    id,
                    inbound_spi,
                    outbound_spi,
                    keep_inbound,
                    ..
                } => {
                    if let Some((i, o, _)) = self.sas.remove(&id) {
                        self.esp.remove(o);
                        if keep_inbound {
                            // Replaced by a rekey: late packets may still come in on it.
                            self.early_inbound.insert(id, i);
                        } else {
                            self.esp.remove(i);
                        }
                    } else if let Some(i) = self.early_inbound.remove(&id) {
                        self.esp.remove(i);
                    }
                    println!(
                        "  [{}] Child SA deleted: SPIs {inbound_spi}/{outbound_spi}{}",
                        self.name,
                        if keep_inbound {
                            " (the inbound one stays a few seconds for late packets)"
                        } else {
                            ""
                        }
                    );
                }
                Event::ChildSaInboundExpired {
                    id, inbound_spi, ..
                } => {
                    if let Some(i) = self.early_inbound.remove(&id) {
                        self.esp.remove(i);
                    }
                    println!(
                        "  [{}] inbound SA {inbound_spi} of the replaced Child SA removed",
                        self.name
                    );
                }
                Event::IkeSaClosed { reason, .. } => {
                    println!("  [{}] IKE SA closed: {reason:?}", self.name)
                }
                other => println!("  [{}] {other:?}", self.name),
            }
        }
        let mut buf = Vec::new();
        while let Some(t) = self.ike.poll_transmit(now, &mut buf) {
            wire.push_back((t.local, t.remote, buf.clone()));
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [self.ike.poll_timeout(), self.esp.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A UDP datagram arrived: port 500 is IKE, port 4500 is demultiplexed (RFC 3948).
    fn receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        mut payload: Vec<u8>,
    ) {
        let is_esp =
            local.port() == 4500 && matches!(classify_udp_4500(&payload), UdpPayload::Esp(_));
        if is_esp {
            if let Ok(d) = self.esp.decapsulate(now, &mut payload) {
                self.received.push(payload[d.range].to_vec());
            }
        } else if !matches!(classify_udp_4500(&payload), UdpPayload::NatKeepalive)
            || local.port() == 500
        {
            self.ike.handle(
                now,
                Datagram {
                    local,
                    remote,
                    payload: &payload,
                },
            );
        }
    }

    /// Encapsulates an inner packet with the Child SA's outbound SA; returns the UDP datagram.
    fn send_ip(
        &mut self,
        now: Instant,
        packet: &[u8],
        buf: &mut [u8],
    ) -> (SocketAddr, SocketAddr, usize) {
        // Always send on the newest Child SA (make-before-break after a rekey).
        let (_, (_, outbound, info)) = self
            .sas
            .iter()
            .max_by_key(|(id, _)| id.0)
            .expect("a Child SA");
        let head = self.esp.headroom(*outbound).unwrap();
        buf[head..head + packet.len()].copy_from_slice(packet);
        let range = self
            .esp
            .encapsulate(now, *outbound, buf, head..head + packet.len())
            .expect("encapsulate");
        let encap = info.outbound.encap.expect("UDP encapsulation");
        let src = SocketAddr::new(info.outbound.local_addr, encap.local_port);
        let dst = SocketAddr::new(info.outbound.remote_addr, encap.remote_port);
        buf.copy_within(range.clone(), 0);
        (src, dst, range.len())
    }
}

fn ipv6_udp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let len = (8 + payload.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[17, 64]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(&[0x30, 0x39, 0x30, 0x39]);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Delivers datagrams until both sides are quiet (virtual time stands still).
fn pump(a: &mut Host, b: &mut Host, now: Instant, wire: &mut Wire) -> usize {
    let mut n = 0;
    loop {
        a.drain(now, wire);
        b.drain(now, wire);
        let Some((src, dst, bytes)) = wire.pop_front() else {
            return n;
        };
        n += 1;
        let host = if dst.ip() == a.ip { &mut *a } else { &mut *b };
        host.receive(now, dst, src, bytes);
    }
}

/// Sends one IPv6/UDP packet each way through the newest Child SA and checks delivery.
fn exchange_packets(a: &mut Host, b: &mut Host, now: Instant, buf: &mut [u8], tag: &str) {
    for (i, (from, to)) in [("fd01::1", "fd02::1"), ("fd02::1", "fd01::1")]
        .into_iter()
        .enumerate()
    {
        let pkt = ipv6_udp(from, to, format!("{tag} from {from}").as_bytes());
        let (sender, receiver) = if i == 0 {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        let (src, dst, n) = sender.send_ip(now, &pkt, buf);
        receiver.receive(now, dst, src, buf[..n].to_vec());
        let got = receiver.received.pop().expect("delivered");
        assert_eq!(got, pkt);
        println!(
            "   [{}] -> [{}]: {} octets inner, {} octets of ESP-in-UDP, decrypted: {:?}",
            sender.name,
            receiver.name,
            pkt.len(),
            n,
            String::from_utf8_lossy(&got[48..])
        );
    }
}

fn main() {
    println!("ipsec-rs demo: two sans-IO peers, one process, an in-memory link, a virtual clock\n");
    let (mut a, a_cfg) = Host::new(
        "A",
        "fd00::1",
        peer("a-to-b", "fd00::1", "fd00::2", "fd01::/64", "fd02::/64"),
    );
    let (mut b, _) = Host::new(
        "B",
        "fd00::2",
        peer("b-from-a", "fd00::2", "fd00::1", "fd02::/64", "fd01::/64"),
    );
    let mut now = Instant::now();
    let start = now;
    let mut wire: Wire = VecDeque::new();

    println!("1. A initiates IKEv2 to B (aes256gcm16-prfsha256-x25519, PSK, encap = yes)");
    let (la, lb) = (SocketAddr::new(a.ip, 500), SocketAddr::new(b.ip, 500));
    a.ike.connect(now, a_cfg, la, lb).expect("connect");
    let mut messages = 0;
    while a.sas.is_empty() || b.sas.is_empty() {
        messages += pump(&mut a, &mut b, now, &mut wire);
        if a.sas.is_empty() || b.sas.is_empty() {
            // Nothing in flight: jump the virtual clock to the next deadline.
            let t = [a.deadline(), b.deadline()]
                .into_iter()
                .flatten()
                .min()
                .expect("negotiation stalled");
            now = now.max(t);
            a.ike.handle_timeout(now);
            b.ike.handle_timeout(now);
        }
    }
    println!(
        "   {messages} IKE messages, {:?} of virtual time\n",
        now - start
    );

    println!("2. IPv6 packets through ESP in both directions");
    let mut buf = vec![0u8; 2048];
    exchange_packets(&mut a, &mut b, now, &mut buf, "hello");

    println!("\n3. A rekeys the Child SA (CREATE_CHILD_SA with REKEY_SA, make-before-break)");
    let child = *a.sas.keys().next().expect("a Child SA");
    now += Duration::from_secs(60);
    a.ike.rekey_child_sa(now, child).expect("rekey");
    let n = pump(&mut a, &mut b, now, &mut wire);
    println!("   {n} IKE messages: CREATE_CHILD_SA, then an INFORMATIONAL Delete of the old SAs");
    assert_eq!(
        (a.sas.len(), b.sas.len()),
        (1, 1),
        "one Child SA left on each side"
    );
    exchange_packets(&mut a, &mut b, now, &mut buf, "after the rekey");

    println!(
        "\n4. Throughput of the ESP engines on this machine (1420-octet inner packets, A -> B)"
    );
    let pkt = ipv6_udp("fd01::1", "fd02::1", &[0x5a; 1420 - 48]);
    let count = 200_000;
    let t0 = Instant::now();
    let mut ok = 0usize;
    for _ in 0..count {
        let (_, _, n) = a.send_ip(now, &pkt, &mut buf);
        if b.esp.decapsulate(now, &mut buf[..n]).is_ok() {
            ok += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "   {ok}/{count} packets encapsulated (A) and decapsulated (B) in {secs:.2} s: {:.2} Gbit/s of inner traffic on one core",
        (ok * pkt.len() * 8) as f64 / secs / 1e9
    );

    println!("\n5. A closes: INFORMATIONAL Delete");
    let sa = a.ike.ike_sas().next().expect("an IKE SA");
    a.ike.close(now, sa).expect("close");
    pump(&mut a, &mut b, now, &mut wire);
    println!(
        "\nDone: IKE SAs left: A {}, B {}",
        a.ike.ike_sas().count(),
        b.ike.ike_sas().count()
    );
}

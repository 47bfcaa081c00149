#!/usr/bin/env bash
# IKEv2 interop with strongSwan 5.9.8 (charon + kernel-libipsec, ESP in UDP 4500):
# ipsec-peer in namespace A initiates (PSK, aes256gcm16-prfsha256-x25519, Child SA
# aes256gcm16 fd01::1 === fd02::1); charon answers in namespace B. Ping both ways, check
# `swanctl --list-sas`, then SIGTERM ipsec-peer and expect charon to delete the IKE SA.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ipsr_need_pkgs iproute2 iputils-ping strongswan-charon strongswan-swanctl \
  libcharon-extra-plugins libstrongswan-standard-plugins libstrongswan-extra-plugins
ipsr_build
ipsr_netns_pair a b
export IPSR_PSK
IPSR_PSK=$(ipsr_hex 24)

# Side B: charon. The inner address lives on lo; kernel-libipsec brings up ipsec0 and routes
# the remote selector through it (table 220).
ip -n "$NS_B" addr add fd02::1/128 dev lo
SW="$IPSR_WORK/sw"
mkdir -p "$SW"
cat >"$SW/strongswan.conf" <<CONF
charon {
  load = random nonce aes sha1 sha2 hmac gcm chapoly curve25519 kdf pem pkcs1 x509 pubkey openssl kernel-libipsec kernel-netlink socket-default vici updown
  filelog { stderr { default = 1 ike = 2 } }
  plugins { vici { socket = unix://$SW/vici } }
  install_routes = yes
}
CONF
cat >"$SW/swanctl.conf" <<CONF
connections {
  t {
    version = 2
    local_addrs = $IPSR_B6
    remote_addrs = $IPSR_A6
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {
      auth = psk
      id = $IPSR_B6
    }
    remote {
      auth = psk
      id = $IPSR_A6
    }
    children {
      c {
        local_ts = fd02::1/128
        remote_ts = fd01::1/128
        esp_proposals = aes256gcm16
        mode = tunnel
      }
    }
  }
}
secrets {
  ike-1 {
    id-a = $IPSR_A6
    id-b = $IPSR_B6
    secret = "$IPSR_PSK"
  }
}
CONF
# charon writes its pid file under /run: give it a private /run (unshare -m execs, so the
# recorded pid is charon's).
ipsr_start "$NS_B" charon env STRONGSWAN_CONF="$SW/strongswan.conf" \
  unshare -m sh -c 'mount -t tmpfs none /run && exec /usr/lib/ipsec/charon'
for _ in $(seq 1 100); do
  [ -S "$SW/vici" ] && break
  sleep 0.1
done
[ -S "$SW/vici" ] || fail "charon did not open its vici socket"
swanctl --load-all --file "$SW/swanctl.conf" --uri "unix://$SW/vici" >"$IPSR_WORK/swanctl-load.txt" 2>&1 \
  || { cat "$IPSR_WORK/swanctl-load.txt"; fail "swanctl --load-all"; }

# Side A: ipsec-peer, initiating.
ipsr_ike_conf "$IPSR_WORK/a.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" start "$IPSR_PSK"
ipsr_start "$NS_A" peer-a env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/a.toml" --keylog "$IPSR_WORK/a.keys"
PID_A=$LAST_PID
ipsr_wait_log "$IPSR_WORK/peer-a.log" "Child SA established" 150 || fail "no Child SA with strongSwan within 15 s"
grep -E "IKE SA established|Child SA established" "$IPSR_WORK/peer-a.log" | sed 's/^/ipsec-peer: /'
swanctl --list-sas --uri "unix://$SW/vici" | tee "$IPSR_WORK/list-sas.txt"
grep -q ESTABLISHED "$IPSR_WORK/list-sas.txt" || fail "strongSwan shows no ESTABLISHED IKE SA"
grep -q INSTALLED "$IPSR_WORK/list-sas.txt" || fail "strongSwan shows no INSTALLED Child SA"

log "ping fd01::1 (ipsec-peer) -> fd02::1 (strongSwan)"
ip netns exec "$NS_A" ping -6 -c 5 -i 0.2 -W 2 -I fd01::1 fd02::1 | tail -n 2 | tee "$IPSR_WORK/ping-ab.txt" \
  || fail "ping ipsec-peer -> strongSwan"
grep -q ' 0% packet loss' "$IPSR_WORK/ping-ab.txt" || fail "ping ipsec-peer -> strongSwan lost packets"
log "ping fd02::1 (strongSwan) -> fd01::1 (ipsec-peer)"
ip netns exec "$NS_B" ping -6 -c 5 -i 0.2 -W 2 -I fd02::1 fd01::1 | tail -n 2 | tee "$IPSR_WORK/ping-ba.txt" \
  || fail "ping strongSwan -> ipsec-peer"
grep -q ' 0% packet loss' "$IPSR_WORK/ping-ba.txt" || fail "ping strongSwan -> ipsec-peer lost packets"

ipsr_stop "$PID_A" || fail "ipsec-peer exited with status $?"
ipsr_wait_log "$IPSR_WORK/charon.log" "received DELETE for IKE_SA" 50 || fail "charon saw no IKE Delete"
log "PASS 04-strongswan"

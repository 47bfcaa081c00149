#!/usr/bin/env bash
# IKEv2 between two ipsec-peer processes: PSK, aes256gcm16-prfsha256-x25519, one tunnel-mode
# Child SA fd01::1 === fd02::1 with ESP in UDP 4500; A initiates. Ping both ways, iperf3, then
# SIGTERM A (which sends the IKE Delete) and expect B to remove its SAs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ipsr_need_pkgs iproute2 iputils-ping iperf3
ipsr_build
ipsr_netns_pair a b
export IPSR_PSK
IPSR_PSK=$(ipsr_hex 24)
ipsr_ike_conf "$IPSR_WORK/a.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" start "$IPSR_PSK"
ipsr_ike_conf "$IPSR_WORK/b.toml" fd02::1 fd01::1 "$IPSR_B6" "$IPSR_A6" none "$IPSR_PSK"
ipsr_start "$NS_B" peer-b env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/b.toml" --keylog "$IPSR_WORK/b.keys"
PID_B=$LAST_PID
ipsr_wait_log "$IPSR_WORK/peer-b.log" "running" || fail "peer B did not start"
ipsr_start "$NS_A" peer-a env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/a.toml" --keylog "$IPSR_WORK/a.keys"
PID_A=$LAST_PID

ipsr_wait_log "$IPSR_WORK/peer-a.log" "Child SA established" 100 || fail "no Child SA on A within 10 s"
ipsr_wait_log "$IPSR_WORK/peer-b.log" "Child SA established" 50 || fail "no Child SA on B"
grep -E "IKE SA established|Child SA established" "$IPSR_WORK/peer-a.log" | sed 's/^/A: /'

ipsr_ping_both_ways "A" "B"

log "iperf3 TCP fd01::1 -> fd02::1 through the IKE-negotiated tunnel, 5 s"
ipsr_start "$NS_B" iperf3-server iperf3 -s -1 -B fd02::1
sleep 0.5
ip netns exec "$NS_A" iperf3 -c fd02::1 -B fd01::1 -t 5 -f m >"$IPSR_WORK/iperf3.txt" 2>&1 \
  || { cat "$IPSR_WORK/iperf3.txt"; fail "iperf3 through the IKE tunnel"; }
grep -E 'sender|receiver' "$IPSR_WORK/iperf3.txt"
grep -q receiver "$IPSR_WORK/iperf3.txt" || fail "iperf3 printed no result"

ipsr_stop "$PID_A" || fail "peer A exited with status $?"
ipsr_wait_log "$IPSR_WORK/peer-b.log" "ESP SA removed" 50 || fail "B did not remove the SAs after A's Delete"
ipsr_stop "$PID_B" || fail "peer B exited with status $?"
log "PASS 03-ike-psk"

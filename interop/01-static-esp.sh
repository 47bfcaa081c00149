#!/usr/bin/env bash
# Static-key ESP over real TUN devices: two ipsec-peer processes in two network namespaces,
# ESP-in-UDP (RFC 3948) on port 4500 over a veth pair, inner fd01::1 <-> fd02::1.
# Checks ping both ways and a 5-second iperf3 TCP run, then a clean SIGTERM shutdown.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ipsr_need_pkgs iproute2 iputils-ping iperf3
ipsr_build
ipsr_static_pair

log "ping fd01::1 -> fd02::1"
ip netns exec "$NS_A" ping -6 -c 5 -i 0.2 -W 2 -I fd01::1 fd02::1 | tee "$IPSR_WORK/ping-ab.txt" \
  || fail "ping A -> B through the tunnel"
grep -q ' 0% packet loss' "$IPSR_WORK/ping-ab.txt" || fail "ping A -> B lost packets"
log "ping fd02::1 -> fd01::1"
ip netns exec "$NS_B" ping -6 -c 5 -i 0.2 -W 2 -I fd02::1 fd01::1 | tee "$IPSR_WORK/ping-ba.txt" \
  || fail "ping B -> A through the tunnel"
grep -q ' 0% packet loss' "$IPSR_WORK/ping-ba.txt" || fail "ping B -> A lost packets"

log "iperf3 TCP fd01::1 -> fd02::1, 5 s"
ipsr_start "$NS_B" iperf3-server iperf3 -s -1 -B fd02::1
sleep 0.5
ip netns exec "$NS_A" iperf3 -c fd02::1 -B fd01::1 -t 5 -f m >"$IPSR_WORK/iperf3.txt" 2>&1 \
  || { cat "$IPSR_WORK/iperf3.txt"; fail "iperf3 through the tunnel"; }
echo "----- iperf3 result"
grep -E 'sender|receiver' "$IPSR_WORK/iperf3.txt"
grep -q receiver "$IPSR_WORK/iperf3.txt" || fail "iperf3 printed no result"

# The ESP records in the key logs: one per SA.
[ "$(grep -c '^uat:esp_sa:' "$KEYLOG_A")" = 2 ] || fail "key log of A lacks ESP records"

ipsr_stop "$PID_A" || fail "peer A exited with status $?"
ipsr_stop "$PID_B" || fail "peer B exited with status $?"
grep -q 'SA stats' "$IPSR_WORK/peer-a.log" || fail "no stats lines in peer A's log"
echo "----- peer A final stats"
grep -E 'SA stats|I/O stats' "$IPSR_WORK/peer-a.log" | tail -n 3
log "PASS 01-static-esp"

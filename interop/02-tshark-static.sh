#!/usr/bin/env bash
# tshark as an independent judge of our ESP: capture the veth while pings cross the
# static-key tunnel, decrypt the capture with ipsec-peer's --keylog output, and require that
# tshark sees every inner ICMPv6 echo request and reply, and no malformed packet.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ipsr_need_pkgs iproute2 iputils-ping tshark
ipsr_build
ipsr_static_pair

CAP="$IPSR_WORK/veth.pcapng"
ipsr_start "$NS_A" tshark-capture tshark -n -i va -f "udp port 4500" -w "$CAP"
TSHARK_PID=$LAST_PID
for _ in $(seq 1 100); do
  grep -q "Capturing on" "$IPSR_WORK/tshark-capture.log" && break
  sleep 0.1
done
grep -q "Capturing on" "$IPSR_WORK/tshark-capture.log" || fail "tshark did not start capturing"
# "Capturing on" is printed a little before the first packet can be seen.
sleep 1

ip netns exec "$NS_A" ping -6 -c 5 -i 0.2 -W 2 -I fd01::1 fd02::1 >/dev/null || fail "ping A -> B"
ip netns exec "$NS_B" ping -6 -c 5 -i 0.2 -W 2 -I fd02::1 fd01::1 >/dev/null || fail "ping B -> A"
sleep 0.5
ipsr_stop "$TSHARK_PID" || true

# Each key-log line is one tshark -o option.
opts=(-o esp.enable_encryption_decode:TRUE)
while IFS= read -r line; do
  case "$line" in '#'* | '') continue ;; esac
  opts+=(-o "$line")
done <"$KEYLOG_A"
[ ${#opts[@]} -eq 6 ] || fail "expected 2 ESP records in $KEYLOG_A, got $(((${#opts[@]} - 2) / 2))"

tshark() { command tshark "$@" 2>/dev/null; }
total=$(tshark -n -r "$CAP" | wc -l)
requests=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'icmpv6.type == 128' -T fields -e ipv6.src | grep -c 'fd0[12]::1' || true)
replies=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'icmpv6.type == 129' | wc -l)
esp_only=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'esp && !icmpv6' | wc -l)
malformed=$(tshark -n -r "$CAP" "${opts[@]}" -Y '_ws.malformed || _ws.expert.severity == error' | wc -l)
echo "captured $total ESP-in-UDP packets: $requests echo requests, $replies replies decrypted, $esp_only undecrypted, $malformed malformed"
tshark -n -r "$CAP" "${opts[@]}" -Y 'icmpv6.type == 128' | head -n 3

[ "$requests" -eq 10 ] || fail "tshark decrypted $requests of 10 ICMPv6 echo requests"
[ "$replies" -eq 10 ] || fail "tshark decrypted $replies of 10 ICMPv6 echo replies"
[ "$esp_only" -eq 0 ] || fail "$esp_only ESP packets did not decrypt"
[ "$malformed" -eq 0 ] || fail "$malformed malformed packets"
log "PASS 02-tshark-static"

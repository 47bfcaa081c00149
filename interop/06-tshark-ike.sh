#!/usr/bin/env bash
# tshark as an independent judge of our IKE and ESP bytes with a real peer: ipsec-peer (A)
# initiates to strongSwan (B); tshark captures the veth and, fed only with ipsec-peer's
# --keylog file, must decrypt the IKE_AUTH exchange (seeing the identities and the AUTH
# payloads inside the SK payload) and the ESP traffic (seeing the inner ICMPv6 echoes),
# with no malformed packet.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/strongswan.sh"

ipsr_need_pkgs iproute2 iputils-ping tshark "${SW_PKGS[@]}"
ipsr_build
ipsr_netns_pair a b
export IPSR_PSK
IPSR_PSK=$(ipsr_hex 24)

CAP="$IPSR_WORK/veth.pcapng"
ipsr_start "$NS_A" tshark-capture tshark -n -i va -f "udp port 500 or udp port 4500" -w "$CAP"
TSHARK_PID=$LAST_PID
ipsr_wait_log "$IPSR_WORK/tshark-capture.log" "Capturing on" 100 || fail "tshark did not start capturing"
sleep 1

ip -n "$NS_B" addr add fd02::1/128 dev lo
sw_conf "$IPSR_WORK/sw-b"
sw_swanctl_conf "$IPSR_WORK/sw-b" "$IPSR_B6" "$IPSR_A6" fd02::1/128 fd01::1/128 none "$IPSR_PSK"
sw_start "$NS_B" b
KEYLOG="$IPSR_WORK/a.keys"
ipsr_ike_conf "$IPSR_WORK/a.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" start "$IPSR_PSK"
ipsr_start "$NS_A" peer-a env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/a.toml" --keylog "$KEYLOG"
PID_A=$LAST_PID
ipsr_wait_log "$IPSR_WORK/peer-a.log" "Child SA established" 150 || fail "no Child SA with strongSwan"
ipsr_ping_both_ways "ipsec-peer" "strongSwan"
sleep 0.5
ipsr_stop "$TSHARK_PID" || true

opts=(-o esp.enable_encryption_decode:TRUE)
while IFS= read -r line; do
  case "$line" in '#'* | '') continue ;; esac
  opts+=(-o "$line")
done <"$KEYLOG"
grep -q '^uat:ikev2_decryption_table:' "$KEYLOG" || fail "the key log has no IKE record"
[ "$(grep -c '^uat:esp_sa:' "$KEYLOG")" -eq 2 ] || fail "the key log lacks ESP records"

tshark() { command tshark "$@" 2>/dev/null; }
# IKE_AUTH: exchange type 35; decrypted, the SK payload shows IDi/IDr (35/36) and AUTH (39).
auth_msgs=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'isakmp.exchangetype == 35' | wc -l)
ids=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'isakmp.exchangetype == 35' -T fields -e isakmp.id.type | grep -c . || true)
auths=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'isakmp.exchangetype == 35 && isakmp.auth.method == 2' | wc -l)
requests=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'icmpv6.type == 128' | wc -l)
replies=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'icmpv6.type == 129' | wc -l)
esp_only=$(tshark -n -r "$CAP" "${opts[@]}" -Y 'esp && !icmpv6' | wc -l)
malformed=$(tshark -n -r "$CAP" "${opts[@]}" -Y '_ws.malformed || _ws.expert.severity == error' | wc -l)
echo "IKE_AUTH messages: $auth_msgs (with decrypted ID payloads: $ids, with PSK AUTH: $auths)"
echo "ESP: $requests echo requests, $replies replies decrypted, $esp_only undecrypted, $malformed malformed"
tshark -n -r "$CAP" "${opts[@]}" -Y 'isakmp.exchangetype == 35' -V | grep -E 'Identification Data|Auth Method' | head -n 4

[ "$auth_msgs" -eq 2 ] || fail "expected 2 IKE_AUTH messages, saw $auth_msgs"
[ "$ids" -eq 2 ] || fail "tshark decrypted the ID payload of $ids of 2 IKE_AUTH messages"
[ "$auths" -eq 2 ] || fail "tshark decrypted the AUTH payload of $auths of 2 IKE_AUTH messages"
[ "$requests" -eq 10 ] || fail "tshark decrypted $requests of 10 ICMPv6 echo requests"
[ "$replies" -eq 10 ] || fail "tshark decrypted $replies of 10 ICMPv6 echo replies"
[ "$esp_only" -eq 0 ] || fail "$esp_only ESP packets did not decrypt"
[ "$malformed" -eq 0 ] || fail "$malformed malformed packets"
ipsr_stop "$PID_A" || fail "ipsec-peer exited with status $?"
log "PASS 06-tshark-ike"

#!/usr/bin/env bash
# Child SA rekeying with strongSwan while traffic flows (RFC 7296 §2.8, make-before-break):
# ping runs for 40 s through a tunnel whose Child SA is rekeyed every 15 s, first by
# strongSwan (we answer CREATE_CHILD_SA), then by ipsec-peer (we initiate it). Every echo
# must be answered, and both sides must have rekeyed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/strongswan.sh"

ipsr_need_pkgs iproute2 iputils-ping "${SW_PKGS[@]}"
ipsr_build

# run_case WHO: WHO (strongswan|ipsec-peer) has the 15 s rekey_time, the other 1 h.
run_case() {
  local who=$1 sw_rekey=1h our_rekey=1h our_life=66m
  if [ "$who" = strongswan ]; then sw_rekey=15s; else our_rekey=15s our_life=30s; fi
  ipsr_netns_pair "a$who" "b$who"
  export IPSR_PSK
  IPSR_PSK=$(ipsr_hex 24)
  ip -n "$NS_B" addr add fd02::1/128 dev lo
  sw_conf "$IPSR_WORK/sw-$who"
  sw_swanctl_conf "$IPSR_WORK/sw-$who" "$IPSR_B6" "$IPSR_A6" fd02::1/128 fd01::1/128 none "$IPSR_PSK" "$sw_rekey"
  sw_start "$NS_B" "$who"
  ipsr_ike_conf "$IPSR_WORK/a-$who.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" start "$IPSR_PSK" "$our_rekey" "$our_life"
  ipsr_start "$NS_A" "peer-$who" env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/a-$who.toml"
  local pid=$LAST_PID log="$IPSR_WORK/peer-$who.log"
  ipsr_wait_log "$log" "Child SA established" 150 || fail "no Child SA with strongSwan ($who rekeys)"

  log "$who rekeys every 15 s; ping for 40 s"
  ip netns exec "$NS_A" ping -6 -c 200 -i 0.2 -W 2 -I fd01::1 fd02::1 | tail -n 2 | tee "$IPSR_WORK/ping-$who.txt" \
    || fail "ping during rekeys ($who)"
  grep -q ' 0% packet loss' "$IPSR_WORK/ping-$who.txt" || fail "echoes lost during rekeys ($who rekeys)"
  local rekeys
  rekeys=$(grep -c "ike_endpoint: Child SA established" "$log" || true)
  rekeys=$((rekeys - 1))
  log "Child SAs rekeyed: $rekeys"
  [ "$rekeys" -ge 2 ] || fail "expected at least 2 rekeys in 40 s, saw $rekeys ($who)"
  sw_list "$NS_B" | grep -E 'INSTALLED|in |out ' | head -n 6
  ipsr_stop "$pid" || fail "ipsec-peer exited with status $?"
  # Our ESP engine dropped nothing (an unknown SPI would mean a rekey lost packets).
  tail -n 1 "$log" | grep -o 'esp_drop=[0-9]* esp_unattributed=[0-9]*'
  tail -n 1 "$log" | grep -q 'esp_drop=0 esp_unattributed=0' || fail "ESP drops during rekeys ($who)"
}

[ "${ONLY:-}" = ipsec-peer ] || run_case strongswan
[ "${ONLY:-}" = strongswan ] || run_case ipsec-peer
log "PASS 08-rekey"

#!/usr/bin/env bash
# Rekeying with strongSwan while traffic flows (RFC 7296 §2.8): ping runs for 40 s through
# a tunnel whose Child SA is rekeyed every 15 s (make-before-break), first by strongSwan (we
# answer CREATE_CHILD_SA), then by ipsec-peer (we initiate it); then whose IKE SA is rekeyed
# every 12 s, by strongSwan, then by ipsec-peer (§1.3.2: the Child SAs move to the new IKE
# SA). Every echo must be answered, the rekeys must have happened, our ESP engine must have
# dropped nothing, and strongSwan must be left with one IKE SA.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/strongswan.sh"

ipsr_need_pkgs iproute2 iputils-ping "${SW_PKGS[@]}"
ipsr_build

# run_case WHO: WHO (strongswan|ipsec-peer) has the 15 s Child SA rekey_time, the other
# 1 h; with WHO = ike-strongswan|ike-ipsec-peer that side rekeys the IKE SA every 12 s.
run_case() {
  local who=$1 sw_rekey=1h our_rekey=1h our_life=66m
  local SW_IKE_REKEY=4h IPSR_IKE_REKEY=4h
  case "$who" in
    strongswan) sw_rekey=15s ;;
    ipsec-peer) our_rekey=15s our_life=30s ;;
    ike-strongswan) SW_IKE_REKEY=12s ;;
    ike-ipsec-peer) IPSR_IKE_REKEY=12s ;;
  esac
  export SW_IKE_REKEY IPSR_IKE_REKEY
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

  log "$who rekeys; ping for 40 s"
  ip netns exec "$NS_A" ping -6 -c 200 -i 0.2 -W 2 -I fd01::1 fd02::1 | tail -n 2 | tee "$IPSR_WORK/ping-$who.txt" \
    || fail "ping during rekeys ($who)"
  grep -q ' 0% packet loss' "$IPSR_WORK/ping-$who.txt" || fail "echoes lost during rekeys ($who rekeys)"
  local rekeys what=Child
  case "$who" in
    ike-*)
      what=IKE
      rekeys=$(grep -c "IKE SA rekeyed" "$log" || true)
      # The Child SA moved with the IKE SA: established once, never re-made.
      [ "$(grep -c "ike_endpoint: Child SA established" "$log")" -eq 1 ] \
        || fail "the Child SA was re-made by an IKE SA rekey ($who)" ;;
    *)
      rekeys=$(grep -c "ike_endpoint: Child SA established" "$log" || true)
      rekeys=$((rekeys - 1)) ;;
  esac
  log "$what SAs rekeyed: $rekeys"
  [ "$rekeys" -ge 2 ] || fail "expected at least 2 $what SA rekeys in 40 s, saw $rekeys ($who)"
  sw_list "$NS_B" | tee "$IPSR_WORK/sw-list-$who.txt" | grep -E 'ESTABLISHED|INSTALLED|in |out ' | head -n 8
  local ike_sas
  ike_sas=$(grep -c ESTABLISHED "$IPSR_WORK/sw-list-$who.txt" || true)
  [ "$ike_sas" -eq 1 ] || fail "strongSwan has $ike_sas IKE SAs after the rekeys ($who)"
  ipsr_stop "$pid" || fail "ipsec-peer exited with status $?"
  # Our ESP engine dropped nothing (an unknown SPI would mean a rekey lost packets).
  tail -n 1 "$log" | grep -o 'esp_drop=[0-9]* esp_unattributed=[0-9]*'
  tail -n 1 "$log" | grep -q 'esp_drop=0 esp_unattributed=0' || fail "ESP drops during rekeys ($who)"
}

for who in strongswan ipsec-peer ike-strongswan ike-ipsec-peer; do
  [ -z "${ONLY:-}" ] || [ "$ONLY" = "$who" ] || continue
  run_case "$who"
done
log "PASS 08-rekey"

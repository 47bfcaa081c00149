#!/usr/bin/env bash
# IKEv2 interop with strongSwan 5.9.8 (charon + kernel-libipsec, ESP in UDP 4500):
# ipsec-peer in namespace A initiates (PSK, aes256gcm16-prfsha256-x25519, Child SA
# aes256gcm16 fd01::1 === fd02::1); charon answers in namespace B. Ping both ways, check
# `swanctl --list-sas`, then SIGTERM ipsec-peer and expect charon to delete the IKE SA.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/strongswan.sh"

ipsr_need_pkgs iproute2 iputils-ping "${SW_PKGS[@]}"
ipsr_build
ipsr_netns_pair a b
export IPSR_PSK
IPSR_PSK=$(ipsr_hex 24)

# Side B: charon, responder. The inner address lives on lo; kernel-libipsec brings up
# ipsec0 and routes the remote selector through it (table 220).
ip -n "$NS_B" addr add fd02::1/128 dev lo
sw_conf "$IPSR_WORK/sw-b"
sw_swanctl_conf "$IPSR_WORK/sw-b" "$IPSR_B6" "$IPSR_A6" fd02::1/128 fd01::1/128 none "$IPSR_PSK"
sw_start "$NS_B" b

# Side A: ipsec-peer, initiating.
ipsr_ike_conf "$IPSR_WORK/a.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" start "$IPSR_PSK"
ipsr_start "$NS_A" peer-a env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/a.toml" --keylog "$IPSR_WORK/a.keys"
PID_A=$LAST_PID
ipsr_wait_log "$IPSR_WORK/peer-a.log" "Child SA established" 150 || fail "no Child SA with strongSwan within 15 s"
grep -E "IKE SA established|Child SA established" "$IPSR_WORK/peer-a.log" | sed 's/^/ipsec-peer: /'
sw_list "$NS_B" | tee "$IPSR_WORK/list-sas.txt"
grep -q ESTABLISHED "$IPSR_WORK/list-sas.txt" || fail "strongSwan shows no ESTABLISHED IKE SA"
grep -q 'INSTALLED, TUNNEL-in-UDP' "$IPSR_WORK/list-sas.txt" || fail "strongSwan shows no INSTALLED Child SA"

ipsr_ping_both_ways "ipsec-peer" "strongSwan"

ipsr_stop "$PID_A" || fail "ipsec-peer exited with status $?"
ipsr_wait_log "$IPSR_WORK/charon-b.log" "received DELETE for IKE_SA" 50 || fail "charon saw no IKE Delete"
sw_wait_gone "$NS_B" 5 || fail "strongSwan still lists the IKE SA after our Delete"
log "PASS 04-strongswan"

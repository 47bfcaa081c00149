#!/usr/bin/env bash
# IKEv2 interop, the other direction: charon in namespace B initiates (`swanctl --initiate`)
# to ipsec-peer answering in namespace A. Ping both ways, then `swanctl --terminate` and
# expect ipsec-peer to remove its SAs on charon's Delete.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/strongswan.sh"

ipsr_need_pkgs iproute2 iputils-ping "${SW_PKGS[@]}"
ipsr_build
ipsr_netns_pair a b
export IPSR_PSK
IPSR_PSK=$(ipsr_hex 24)

# Side A: ipsec-peer, responder only.
ipsr_ike_conf "$IPSR_WORK/a.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" none "$IPSR_PSK"
ipsr_start "$NS_A" peer-a env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/a.toml" --keylog "$IPSR_WORK/a.keys"
PID_A=$LAST_PID
ipsr_wait_log "$IPSR_WORK/peer-a.log" "running" || fail "ipsec-peer did not start"

# Side B: charon, initiating.
ip -n "$NS_B" addr add fd02::1/128 dev lo
sw_conf "$IPSR_WORK/sw-b"
sw_swanctl_conf "$IPSR_WORK/sw-b" "$IPSR_B6" "$IPSR_A6" fd02::1/128 fd01::1/128 none "$IPSR_PSK"
sw_start "$NS_B" b
ip netns exec "$NS_B" swanctl --initiate --child c --uri "$SW_URI" >"$IPSR_WORK/initiate.txt" 2>&1 \
  || { tail -n 20 "$IPSR_WORK/initiate.txt"; fail "swanctl --initiate"; }
grep -E 'selected proposal|CHILD_SA .* established' "$IPSR_WORK/initiate.txt" | sed 's/^/charon: /'
ipsr_wait_log "$IPSR_WORK/peer-a.log" "Child SA established" 50 || fail "ipsec-peer reports no Child SA"
sw_list "$NS_B" | tee "$IPSR_WORK/list-sas.txt"
grep -q 'INSTALLED, TUNNEL-in-UDP' "$IPSR_WORK/list-sas.txt" || fail "strongSwan shows no INSTALLED Child SA"

ipsr_ping_both_ways "ipsec-peer" "strongSwan"

ip netns exec "$NS_B" swanctl --terminate --ike t --uri "$SW_URI" >"$IPSR_WORK/terminate.txt" 2>&1 \
  || { cat "$IPSR_WORK/terminate.txt"; fail "swanctl --terminate"; }
ipsr_wait_log "$IPSR_WORK/peer-a.log" "IKE SA deleted by peer" 50 || fail "ipsec-peer did not see charon's Delete"
ipsr_wait_log "$IPSR_WORK/peer-a.log" "ESP SA removed" 20 || fail "ipsec-peer kept its ESP SAs"
ipsr_stop "$PID_A" || fail "ipsec-peer exited with status $?"
log "PASS 05-strongswan-initiator"

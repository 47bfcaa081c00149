# shellcheck shell=bash
# Helpers for the interop scripts; source it, then call the ipsr_* functions.
#
# Everything runs as root. Namespaces are named ipsr-<pid>-<x>, the veth pair is created
# directly inside them (the host's namespace and routes are never touched), and an EXIT trap
# kills exactly the processes started with ipsr_start, then deletes the namespaces.
set -euo pipefail

IPSR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IPSR_PEER="$IPSR_ROOT/target/release/ipsec-peer"
IPSR_WORK=$(mktemp -d /tmp/ipsr-work-XXXXXX)
IPSR_NS=()
IPSR_PIDS=()
IPSR_LOGS=()
IPSR_KEEP=${IPSR_KEEP:-0}

# Outer addresses on the veth pair.
IPSR_A6=fd00::1
IPSR_B6=fd00::2
IPSR_A4=10.99.0.1
IPSR_B4=10.99.0.2

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# fail MESSAGE: print the message and the tail of every peer log, then exit 1.
fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "${IPSR_LOGS[@]}"; do
    echo "----- tail of $f" >&2
    tail -n 40 "$f" >&2 || true
  done
  exit 1
}

# ipsr_need_pkgs PKG...: apt-get install the packages that are not installed yet.
ipsr_need_pkgs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /tmp/ipsr-apt-updated ]; then
    apt-get update -qq && touch /tmp/ipsr-apt-updated
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ipsr_build: build the release binary once per run-all (cargo is a no-op when fresh).
ipsr_build() {
  log "building ipsec-peer (release)"
  (cd "$IPSR_ROOT" && cargo build --release -q -p examples --bin ipsec-peer)
  [ -x "$IPSR_PEER" ] || fail "no binary at $IPSR_PEER"
}

ipsr_cleanup() {
  local rc=$? pid ns i
  trap - EXIT INT TERM
  for pid in "${IPSR_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${IPSR_PIDS[@]}"; do
    for i in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for ns in "${IPSR_NS[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ "$rc" -eq 0 ] && [ "$IPSR_KEEP" = 0 ]; then
    rm -rf "$IPSR_WORK"
  else
    echo "logs kept in $IPSR_WORK" >&2
  fi
  exit "$rc"
}
trap ipsr_cleanup EXIT
trap 'exit 130' INT TERM

# ipsr_netns_pair A B: two namespaces joined by a veth pair (va in A, vb in B) with
# fd00::1/64 + 10.99.0.1/24 on A and fd00::2/64 + 10.99.0.2/24 on B. Sets NS_A and NS_B.
ipsr_netns_pair() {
  NS_A="ipsr-$$-$1"
  NS_B="ipsr-$$-$2"
  ip netns add "$NS_A"
  IPSR_NS+=("$NS_A")
  ip netns add "$NS_B"
  IPSR_NS+=("$NS_B")
  ip link add va netns "$NS_A" type veth peer name vb netns "$NS_B"
  ip -n "$NS_A" link set lo up
  ip -n "$NS_B" link set lo up
  ip -n "$NS_A" addr add "$IPSR_A6/64" dev va nodad
  ip -n "$NS_B" addr add "$IPSR_B6/64" dev vb nodad
  ip -n "$NS_A" addr add "$IPSR_A4/24" dev va
  ip -n "$NS_B" addr add "$IPSR_B4/24" dev vb
  ip -n "$NS_A" link set va up
  ip -n "$NS_B" link set vb up
  local i
  for i in $(seq 1 50); do
    ip netns exec "$NS_A" ping -6 -c 1 -W 1 "$IPSR_B6" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "veth link between $NS_A and $NS_B did not come up"
}

# ipsr_start NS NAME CMD...: run CMD in namespace NS in the background, output to
# $IPSR_WORK/NAME.log; records the pid (ip netns exec execs CMD, so it is CMD's pid).
ipsr_start() {
  local ns=$1 name=$2
  shift 2
  local logf="$IPSR_WORK/$name.log"
  ip netns exec "$ns" "$@" >"$logf" 2>&1 &
  IPSR_PIDS+=("$!")
  IPSR_LOGS+=("$logf")
  LAST_PID=$!
}

# ipsr_stop PID: SIGTERM, wait up to 5 s, return the exit status (fails if it hangs).
ipsr_stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "pid $pid ignored SIGTERM"
  local keep=() p
  for p in "${IPSR_PIDS[@]}"; do
    [ "$p" = "$pid" ] || keep+=("$p")
  done
  IPSR_PIDS=("${keep[@]}")
  wait "$pid"
}

# ipsr_wait_link NS DEV: wait until DEV exists and is up in NS.
ipsr_wait_link() {
  local i
  for i in $(seq 1 100); do
    ip -n "$1" link show "$2" 2>/dev/null | grep -q ',UP' && return 0
    sleep 0.1
  done
  fail "$2 did not come up in $1"
}

# ipsr_hex N: N random octets as hex.
ipsr_hex() { head -c "$1" /dev/urandom | od -An -tx1 -v | tr -d ' \n'; }

# ipsr_static_pair: two ipsec-peer processes with static AES-256-GCM keys in namespaces A
# and B: TUN ipsr0 with fd01::1 (A) / fd02::1 (B), ESP in UDP 4500 over the veth. Sets
# PID_A, PID_B, KEYLOG_A, KEYLOG_B.
ipsr_static_pair() {
  ipsr_netns_pair a b
  local k_ab k_ba
  k_ab=$(ipsr_hex 36)
  k_ba=$(ipsr_hex 36)
  ipsr_static_conf "$IPSR_WORK/a.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" 0x1001 "$k_ab" 0x2002 "$k_ba"
  ipsr_static_conf "$IPSR_WORK/b.toml" fd02::1 fd01::1 "$IPSR_B6" "$IPSR_A6" 0x2002 "$k_ba" 0x1001 "$k_ab"
  KEYLOG_A="$IPSR_WORK/a.keys"
  KEYLOG_B="$IPSR_WORK/b.keys"
  ipsr_start "$NS_A" peer-a env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/a.toml" --keylog "$KEYLOG_A" --stats-interval 2s
  PID_A=$LAST_PID
  ipsr_start "$NS_B" peer-b env RUST_LOG="${RUST_LOG:-info}" "$IPSR_PEER" --config "$IPSR_WORK/b.toml" --keylog "$KEYLOG_B" --stats-interval 2s
  PID_B=$LAST_PID
  ipsr_wait_link "$NS_A" ipsr0
  ipsr_wait_link "$NS_B" ipsr0
  sleep 0.3
}

# ipsr_static_conf FILE INNER_LOCAL INNER_REMOTE OUTER_LOCAL OUTER_REMOTE SPI_OUT KEY_OUT SPI_IN KEY_IN
ipsr_static_conf() {
  cat >"$1" <<CONF
[tun]
name = "ipsr0"
mtu = 1400
addresses = ["$2/128"]

[[manual_sa]]
direction = "out"
spi = $6
esp = "aes256gcm16"
key = "$7"
local_addr = "$4"
remote_addr = "$5"
local_ts = ["$2/128"]
remote_ts = ["$3/128"]

[[manual_sa]]
direction = "in"
spi = $8
esp = "aes256gcm16"
key = "$9"
local_addr = "$4"
remote_addr = "$5"
local_ts = ["$2/128"]
remote_ts = ["$3/128"]
CONF
}

# ipsr_ike_conf FILE INNER_LOCAL INNER_REMOTE OUTER_LOCAL OUTER_REMOTE START_ACTION PSK [REKEY_TIME]
ipsr_ike_conf() {
  cat >"$1" <<CONF
[tun]
name = "ipsr0"
mtu = 1400
addresses = ["$2/128"]

[connections.t]
local_addrs = ["$4"]
remote_addrs = ["$5"]
proposals = ["aes256gcm16-prfsha256-x25519"]
encap = true
rekey_time = "${IPSR_IKE_REKEY:-4h}"

[connections.t.local]
auth = "psk"
id = "$4"

[connections.t.remote]
auth = "psk"
id = "$5"

[connections.t.children.c]
local_ts = ["$2/128"]
remote_ts = ["$3/128"]
esp_proposals = ["aes256gcm16"]
mode = "tunnel"
start_action = "$6"
rekey_time = "${8:-1h}"
life_time = "${9:-66m}"

[secrets.ike-1]
id = ["$4", "$5"]
secret_env = "IPSR_PSK"
CONF
}

# ipsr_wait_log FILE PATTERN [TENTHS]: wait until PATTERN appears in FILE.
ipsr_wait_log() {
  local i
  for i in $(seq 1 "${3:-100}"); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ipsr_ping_both_ways NAME_A NAME_B: 5 pings fd01::1 (A) -> fd02::1 (B) and back, no loss.
ipsr_ping_both_ways() {
  log "ping fd01::1 ($1) -> fd02::1 ($2)"
  ip netns exec "$NS_A" ping -6 -c 5 -i 0.2 -W 2 -I fd01::1 fd02::1 | tail -n 2 | tee "$IPSR_WORK/ping-ab.txt" \
    || fail "ping $1 -> $2"
  grep -q ' 0% packet loss' "$IPSR_WORK/ping-ab.txt" || fail "ping $1 -> $2 lost packets"
  log "ping fd02::1 ($2) -> fd01::1 ($1)"
  ip netns exec "$NS_B" ping -6 -c 5 -i 0.2 -W 2 -I fd02::1 fd01::1 | tail -n 2 | tee "$IPSR_WORK/ping-ba.txt" \
    || fail "ping $2 -> $1"
  grep -q ' 0% packet loss' "$IPSR_WORK/ping-ba.txt" || fail "ping $2 -> $1 lost packets"
}

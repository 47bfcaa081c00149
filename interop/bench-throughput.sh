#!/usr/bin/env bash
# Tunnel throughput benchmark (not part of run-all): iperf3 TCP and UDP through
#   (a) two ipsec-peer processes (static AES-256-GCM keys, ESP in UDP 4500),
#   (b) two strongSwan charons with kernel-libipsec (aes256gcm16, openssl + aesni first),
#   (c) two wireguard-go processes,
# each pair in its own two network namespaces joined by a veth pair (lib.sh), inner
# fd01::1 <-> fd02::1 over outer fd00::1 <-> fd00::2, plus the bare veth as a reference.
# CPU per gigabit: utime + stime of the tunnel processes (both ends) over the run, from
# /proc/PID/stat, divided by the gigabits the receiver got.
#
#   bash interop/bench-throughput.sh            # prints a markdown table and the ratios
#   BENCH_TIME=10 BENCH_PEER_ARGS="--provider aws-lc" BENCH_ONLY="ours wg" bash interop/...
#   BENCH_PERF=ours ...   # perf profile of the ipsec-peer processes during the TCP run
#                         # (summary left in /tmp/ipsr-perf-ours.txt)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/strongswan.sh"

BENCH_TIME=${BENCH_TIME:-10}
# UDP payload: fits the smallest inner MTU (1400) with the IPv6 + UDP headers.
BENCH_UDP_LEN=${BENCH_UDP_LEN:-1300}
BENCH_ONLY=${BENCH_ONLY:-"veth ours sw wg"}
BENCH_FEATURES=${BENCH_FEATURES:-aws-lc}
BENCH_PEER_ARGS=${BENCH_PEER_ARGS:---provider aws-lc --threads 2 --offload on}
HZ=$(getconf CLK_TCK)

ipsr_need_pkgs iproute2 iputils-ping iperf3 python3 wireguard-go wireguard-tools "${SW_PKGS[@]}"
log "building ipsec-peer (release, features: ${BENCH_FEATURES:-none})"
(cd "$IPSR_ROOT" && cargo build --release -q -p examples --bin ipsec-peer ${BENCH_FEATURES:+--features "$BENCH_FEATURES"})

# cpu_ticks PID...: utime + stime of the processes (clock ticks), all threads.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

# run_iperf NAME MODE PIDS...: iperf3 MODE (tcp|udp) from fd01::1 in NS_A to fd02::1 in NS_B
# (or $SRV_IP/$CLI_IP); prints "<gbit/s> <cpu s per Gbit> <retransmits or loss %>".
run_iperf() {
  local name=$1 mode=$2
  shift 2
  local srv=${SRV_IP:-fd02::1} cli=${CLI_IP:-fd01::1} out="$IPSR_WORK/iperf-$name-$mode.json"
  ip netns exec "$NS_B" iperf3 -s -1 -B "$srv" >/dev/null 2>&1 &
  local spid=$!
  sleep 0.5
  local args=(-c "$srv" -B "$cli" -t "$BENCH_TIME" -J)
  [ "$mode" = udp ] && args+=(-u -b 0 -l "$BENCH_UDP_LEN")
  local t0 t1 perf_pid=
  if [ -n "${BENCH_PERF:-}" ] && [ "$name" = "$BENCH_PERF" ] && [ "$mode" = tcp ]; then
    # A per-packet profile of the tunnel processes (software clock: no PMU in VMs).
    perf record -q -e cpu-clock -F 4000 -g -o "$IPSR_WORK/perf-$name.data" \
      -p "$(IFS=,; echo "$*")" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  t0=$(cpu_ticks "$@")
  ip netns exec "$NS_A" iperf3 "${args[@]}" >"$out" 2>&1 || true
  t1=$(cpu_ticks "$@")
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$IPSR_WORK/perf-$name.data" --no-children --sort comm,dso,symbol --percent-limit 0.7 \
      --stdio 2>/dev/null | grep -v '^$' | grep -E '^ +[0-9]' >"$IPSR_WORK/perf-$name.txt" || true
    cp "$IPSR_WORK/perf-$name.txt" "/tmp/ipsr-perf-$name.txt" 2>/dev/null || true
  fi
  wait "$spid" 2>/dev/null || true
  python3 - "$out" "$mode" "$((t1 - t0))" "$HZ" "$#" <<'PY'
import json, sys
path, mode, ticks, hz, nproc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
try:
    j = json.load(open(path))
    end = j["end"]
    if mode == "tcp":
        recv = end["sum_received"]
        bps = recv["bits_per_second"]
        secs = recv["seconds"]
        extra = str(end["sum_sent"].get("retransmits", 0))
    else:
        s = end["sum"]
        # The receiver's view: datagrams that arrived.
        secs = s["seconds"]
        bps = s["bits_per_second"] * (1 - s.get("lost_percent", 0) / 100)
        extra = "%.1f%%" % s.get("lost_percent", 0)
    gbit = bps * secs / 1e9
    cpu = ticks / hz
    per = cpu / gbit if gbit > 0 and nproc > 0 else float("nan")
    print("%.3f %.2f %s" % (bps / 1e9, per, extra))
except Exception as e:
    print("0 nan err")
PY
}

declare -A RES

bench_pair() {
  local key=$1
  shift
  local r
  r=$(run_iperf "$key" tcp "$@")
  RES[$key-tcp]=$r
  log "$key TCP: $r (Gbit/s, CPU s/Gbit, retransmits)"
  r=$(run_iperf "$key" udp "$@")
  RES[$key-udp]=$r
  log "$key UDP: $r (Gbit/s, CPU s/Gbit, loss)"
}

teardown() {
  local p
  for p in "$@"; do ipsr_stop "$p" >/dev/null 2>&1 || true; done
  local ns
  for ns in "${IPSR_NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  IPSR_NS=()
}

# --- bare veth ------------------------------------------------------------------------
if [[ " $BENCH_ONLY " == *" veth "* ]]; then
  ipsr_netns_pair va vb
  SRV_IP=$IPSR_B6 CLI_IP=$IPSR_A6 bench_pair veth
  teardown
fi

# --- ipsec-peer -----------------------------------------------------------------------
if [[ " $BENCH_ONLY " == *" ours "* ]]; then
  ipsr_netns_pair oa ob
  k_ab=$(ipsr_hex 36)
  k_ba=$(ipsr_hex 36)
  ipsr_static_conf "$IPSR_WORK/a.toml" fd01::1 fd02::1 "$IPSR_A6" "$IPSR_B6" 0x1001 "$k_ab" 0x2002 "$k_ba"
  ipsr_static_conf "$IPSR_WORK/b.toml" fd02::1 fd01::1 "$IPSR_B6" "$IPSR_A6" 0x2002 "$k_ba" 0x1001 "$k_ab"
  # shellcheck disable=SC2086
  ipsr_start "$NS_A" peer-a env RUST_LOG=info "$IPSR_PEER" --config "$IPSR_WORK/a.toml" --stats-interval 0 $BENCH_PEER_ARGS
  PA=$LAST_PID
  # shellcheck disable=SC2086
  ipsr_start "$NS_B" peer-b env RUST_LOG=info "$IPSR_PEER" --config "$IPSR_WORK/b.toml" --stats-interval 0 $BENCH_PEER_ARGS
  PB=$LAST_PID
  ipsr_wait_link "$NS_A" ipsr0
  ipsr_wait_link "$NS_B" ipsr0
  sleep 0.3
  ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 -W 2 -I fd01::1 fd02::1 >/dev/null || fail "ipsec-peer tunnel down"
  bench_pair ours "$PA" "$PB"
  teardown "$PA" "$PB"
fi

# --- strongSwan kernel-libipsec -------------------------------------------------------
if [[ " $BENCH_ONLY " == *" sw "* ]]; then
  ipsr_netns_pair sa sb
  export IPSR_PSK
  IPSR_PSK=$(ipsr_hex 24)
  ip -n "$NS_A" addr add fd01::1/128 dev lo
  ip -n "$NS_B" addr add fd02::1/128 dev lo
  sw_conf "$IPSR_WORK/sw-a" "$SW_LOAD_FAST"
  sw_swanctl_conf "$IPSR_WORK/sw-a" "$IPSR_A6" "$IPSR_B6" fd01::1/128 fd02::1/128 none "$IPSR_PSK" 1h aes256gcm16
  sw_conf "$IPSR_WORK/sw-b" "$SW_LOAD_FAST"
  sw_swanctl_conf "$IPSR_WORK/sw-b" "$IPSR_B6" "$IPSR_A6" fd02::1/128 fd01::1/128 none "$IPSR_PSK" 1h aes256gcm16
  sw_start "$NS_A" a
  SA_PID=$SW_PID
  SA_URI=$SW_URI
  sw_start "$NS_B" b
  SB_PID=$SW_PID
  ip netns exec "$NS_A" swanctl --initiate --child c --uri "$SA_URI" >"$IPSR_WORK/sw-initiate.txt" 2>&1 \
    || { tail -n 20 "$IPSR_WORK/sw-initiate.txt"; fail "swanctl --initiate"; }
  grep -E 'selected proposal' "$IPSR_WORK/sw-initiate.txt" | sed 's/^/charon: /' || true
  ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 -W 2 -I fd01::1 fd02::1 >/dev/null || fail "strongSwan tunnel down"
  # ipsr_stop waits for the pid; the charons were started via unshare, which execs sh -c
  # that execs charon, so the pids are charon's.
  bench_pair sw "$SA_PID" "$SB_PID"
  teardown "$SA_PID" "$SB_PID"
fi

# --- wireguard-go ---------------------------------------------------------------------
if [[ " $BENCH_ONLY " == *" wg "* ]]; then
  ipsr_netns_pair wa wb
  # The UAPI sockets (/var/run/wireguard/NAME.sock) are not per namespace: distinct names.
  rm -f /var/run/wireguard/wgipsra.sock /var/run/wireguard/wgipsrb.sock
  ka=$(wg genkey)
  kb=$(wg genkey)
  ipsr_start "$NS_A" wg-a env LOG_LEVEL=error WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f wgipsra
  WA=$LAST_PID
  ipsr_start "$NS_B" wg-b env LOG_LEVEL=error WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f wgipsrb
  WB=$LAST_PID
  for i in $(seq 1 50); do
    ip -n "$NS_A" link show wgipsra >/dev/null 2>&1 && ip -n "$NS_B" link show wgipsrb >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$ka" >"$IPSR_WORK/wg-a.key"
  echo "$kb" >"$IPSR_WORK/wg-b.key"
  ip netns exec "$NS_A" wg set wgipsra private-key "$IPSR_WORK/wg-a.key" listen-port 51820 \
    peer "$(echo "$kb" | wg pubkey)" allowed-ips fd02::1/128 endpoint "[$IPSR_B6]:51820"
  ip netns exec "$NS_B" wg set wgipsrb private-key "$IPSR_WORK/wg-b.key" listen-port 51820 \
    peer "$(echo "$ka" | wg pubkey)" allowed-ips fd01::1/128 endpoint "[$IPSR_A6]:51820"
  ip -n "$NS_A" addr add fd01::1/128 dev wgipsra
  ip -n "$NS_B" addr add fd02::1/128 dev wgipsrb
  ip -n "$NS_A" link set wgipsra up
  ip -n "$NS_B" link set wgipsrb up
  ip -n "$NS_A" route add fd02::1/128 dev wgipsra
  ip -n "$NS_B" route add fd01::1/128 dev wgipsrb
  sleep 0.5
  ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 -W 2 -I fd01::1 fd02::1 >/dev/null || fail "wireguard-go tunnel down"
  bench_pair wg "$WA" "$WB"
  teardown "$WA" "$WB"
fi

# --- the table ------------------------------------------------------------------------
python3 - "$BENCH_TIME" "$BENCH_UDP_LEN" "$BENCH_PEER_ARGS" <<PY
import math, sys
t, ulen, pargs = sys.argv[1], sys.argv[2], sys.argv[3]
res = {
$(for k in "${!RES[@]}"; do printf '    "%s": "%s",\n' "$k" "${RES[$k]}"; done)
}
names = [("veth", "bare veth (no tunnel)"), ("ours", "ipsec-peer, AES-256-GCM (" + pargs + ")"),
         ("sw", "strongSwan 5.9 kernel-libipsec, aes256gcm16"), ("wg", "wireguard-go")]
def get(k, m):
    v = res.get(k + "-" + m, "").split()
    if len(v) < 3:
        return None
    return float(v[0]), float(v[1]), v[2]
print()
print("iperf3 %s s, TCP and UDP (-b 0 -l %s); CPU = user+system time of both tunnel processes per Gbit received" % (t, ulen))
print()
print("| tunnel | TCP Gbit/s | TCP retr | TCP CPU s/Gbit | UDP Gbit/s (recv) | UDP loss | UDP CPU s/Gbit |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k, label in names:
    a, b = get(k, "tcp"), get(k, "udp")
    if a is None and b is None:
        continue
    f = lambda x, i, fmt: (fmt % x[i]) if x is not None and not (isinstance(x[i], float) and math.isnan(x[i])) else "–"
    cpu = lambda x: "–" if k == "veth" else f(x, 1, "%.2f")
    print("| %s | %s | %s | %s | %s | %s | %s |" % (label, f(a, 0, "%.2f"), f(a, 2, "%s"), cpu(a), f(b, 0, "%.2f"), f(b, 2, "%s"), cpu(b)))
print()
for m in ("tcp", "udp"):
    o = get("ours", m)
    for k, label in (("sw", "strongSwan kernel-libipsec"), ("wg", "wireguard-go")):
        x = get(k, m)
        if o and x and x[0] > 0:
            print("- %s: ours / %s = %.2f× throughput, %.2f× CPU per Gbit" % (m.upper(), label, o[0] / x[0], o[1] / x[1] if x[1] > 0 else float("nan")))
PY
log "done"

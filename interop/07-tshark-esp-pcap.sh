#!/usr/bin/env bash
# tshark as an independent judge of the ESP bytes our engine writes, with no network: the
# esp-pcap example encapsulates ICMPv6 echo requests (inner fd01::1 -> fd02::1) in two
# tunnel-mode SAs over an IPv6 outer header (fd00::1 -> fd00::2), AES-256-GCM as raw ESP
# (next header 50) and AES-128-GCM in UDP 4500 (RFC 3948), and writes a pcap plus the key
# log. Fed only with the key log, tshark must decrypt every echo request of both SAs, find
# the ICMPv6 and UDP checksums good, and see no undecrypted ESP and no malformed packet.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ipsr_need_pkgs tshark
log "building esp-pcap"
(cd "$IPSR_ROOT" && cargo build -q -p examples --bin esp-pcap)
BIN="$IPSR_ROOT/target/debug/esp-pcap"
[ -x "$BIN" ] || fail "no binary at $BIN"

COUNT=8
CAP="$IPSR_WORK/esp.pcap"
KEYLOG="$IPSR_WORK/esp.keys"
"$BIN" "$CAP" "$KEYLOG" "$COUNT" || fail "esp-pcap failed"

opts=(-o esp.enable_encryption_decode:TRUE -o udp.check_checksum:TRUE)
while IFS= read -r line; do
  case "$line" in '#'* | '') continue ;; esac
  opts+=(-o "$line")
done <"$KEYLOG"
[ "$(grep -c '^uat:esp_sa:' "$KEYLOG")" -eq 2 ] || fail "expected 2 ESP records in $KEYLOG"

tshark() { command tshark "$@" 2>/dev/null; }
count() { tshark -n -r "$CAP" "${opts[@]}" -Y "$1" | wc -l; }
total=$(tshark -n -r "$CAP" | wc -l)
raw=$(count 'ipv6.nxt == 50 && !udp && esp.spi == 0x1001 && icmpv6.type == 128 && ipv6.src == fd01::1 && ipv6.dst == fd02::1')
udp=$(count 'udp.srcport == 4500 && udp.dstport == 4500 && esp.spi == 0x1002 && icmpv6.type == 128 && ipv6.src == fd01::1 && ipv6.dst == fd02::1')
icmp_ok=$(count 'icmpv6.checksum.status == 1')
udp_ok=$(count 'udp.checksum.status == 1')
outer=$(tshark -n -r "$CAP" -T fields -e ipv6.src -e ipv6.dst | sort -u)
esp_only=$(count 'esp && !icmpv6')
malformed=$(count '_ws.malformed || _ws.expert.severity == error')
echo "pcap of $total packets: $raw echo requests decrypted from raw ESP, $udp from UDP 4500;" \
  "$icmp_ok good ICMPv6 checksums, $udp_ok good UDP checksums; $esp_only undecrypted, $malformed malformed"
tshark -n -r "$CAP" "${opts[@]}" -T fields -e frame.number -e esp.spi -e udp.srcport -e ipv6.src -e ipv6.dst \
  -e icmpv6.echo.identifier -e icmpv6.echo.sequence_number | head -n 4

[ "$total" -eq $((2 * COUNT)) ] || fail "expected $((2 * COUNT)) packets in the capture, got $total"
[ "$outer" = "fd00::1	fd00::2" ] || fail "unexpected outer addresses: $outer"
[ "$raw" -eq "$COUNT" ] || fail "tshark decrypted $raw of $COUNT echo requests of the raw ESP SA"
[ "$udp" -eq "$COUNT" ] || fail "tshark decrypted $udp of $COUNT echo requests of the UDP-encapsulated SA"
[ "$icmp_ok" -eq $((2 * COUNT)) ] || fail "$icmp_ok of $((2 * COUNT)) ICMPv6 checksums good"
[ "$udp_ok" -eq "$COUNT" ] || fail "$udp_ok of $COUNT UDP checksums good"
[ "$esp_only" -eq 0 ] || fail "$esp_only ESP packets did not decrypt"
[ "$malformed" -eq 0 ] || fail "$malformed malformed packets"
log "PASS 07-tshark-esp-pcap"

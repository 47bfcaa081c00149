# shellcheck shell=bash
# strongSwan 5.9.8 (Debian) as a reference peer, sourced after lib.sh.
#
# One charon per namespace, each with a private /run (charon writes its pid file there), its
# own strongswan.conf (STRONGSWAN_CONF) and vici socket. The kernel has no XFRM ESP, so
# charon uses kernel-libipsec: userspace ESP behind a TUN device (ipsec0), always in UDP
# 4500 (RFC 3948). See shared/interop/strongswan.md for how this was first seen working.

SW_PKGS=(strongswan-charon strongswan-swanctl libcharon-extra-plugins
  libstrongswan-standard-plugins libstrongswan-extra-plugins)

SW_LOAD_DEFAULT="random nonce aes sha1 sha2 hmac gcm chapoly curve25519 kdf pem pkcs1 x509 pubkey openssl kernel-libipsec kernel-netlink socket-default vici updown"
# The fast crypto first: charon takes the first plugin offering an algorithm.
SW_LOAD_FAST="openssl aesni random nonce aes sha1 sha2 hmac gcm chapoly curve25519 kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici updown"

# sw_conf DIR [LOAD]: strongswan.conf for one instance in DIR (vici socket DIR/vici);
# LOAD is the plugin list (default $SW_LOAD_DEFAULT).
sw_conf() {
  local dir=$1 load=${2:-$SW_LOAD_DEFAULT}
  mkdir -p "$dir"
  cat >"$dir/strongswan.conf" <<CONF
charon {
  load = $load
  filelog {
    stderr {
      default = 1
      ike = 2
      cfg = 2
      knl = 1
    }
  }
  plugins {
    vici {
      socket = unix://$dir/vici
    }
  }
  install_routes = yes
  retransmit_timeout = 2.0
  retransmit_tries = 3
}
CONF
}

# sw_swanctl_conf DIR LOCAL REMOTE LOCAL_TS REMOTE_TS START_ACTION PSK [REKEY_TIME] [ESP]
sw_swanctl_conf() {
  local dir=$1 local=$2 remote=$3 lts=$4 rts=$5 start=$6 psk=$7 rekey=${8:-1h} esp=${9:-aes256gcm16}
  cat >"$dir/swanctl.conf" <<CONF
connections {
  t {
    version = 2
    local_addrs = $local
    remote_addrs = $remote
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    rekey_time = ${SW_IKE_REKEY:-4h}
    local {
      auth = psk
      id = $local
    }
    remote {
      auth = psk
      id = $remote
    }
    children {
      c {
        local_ts = $lts
        remote_ts = $rts
        esp_proposals = $esp
        mode = tunnel
        start_action = $start
        rekey_time = $rekey
      }
    }
  }
}
secrets {
  ike-1 {
    id-1 = $local
    id-2 = $remote
    secret = "$psk"
  }
}
CONF
}

# sw_start NS NAME: starts charon for DIR=$IPSR_WORK/sw-NAME in NS and loads swanctl.conf.
# Sets SW_PID and SW_URI.
sw_start() {
  local ns=$1 name=$2 dir="$IPSR_WORK/sw-$2"
  ipsr_start "$ns" "charon-$name" env STRONGSWAN_CONF="$dir/strongswan.conf" \
    unshare -m sh -c 'mount -t tmpfs none /run && exec /usr/lib/ipsec/charon'
  SW_PID=$LAST_PID
  SW_URI="unix://$dir/vici"
  local i
  for i in $(seq 1 50); do
    [ -S "$dir/vici" ] && break
    sleep 0.1
  done
  [ -S "$dir/vici" ] || fail "charon $name did not open its vici socket"
  ip netns exec "$ns" swanctl --load-all --file "$dir/swanctl.conf" --uri "$SW_URI" >"$dir/load.txt" 2>&1 \
    || { cat "$dir/load.txt"; fail "swanctl --load-all ($name)"; }
}

# sw_list NS: swanctl --list-sas output of the charon started last in NS.
sw_list() {
  ip netns exec "$1" swanctl --list-sas --uri "$SW_URI" 2>&1
}

# sw_wait_sa NS PATTERN SECONDS: wait until --list-sas matches PATTERN (grep -E).
sw_wait_sa() {
  local i
  for i in $(seq 1 $(($3 * 5))); do
    sw_list "$1" | grep -Eq "$2" && return 0
    sleep 0.2
  done
  return 1
}

# sw_wait_gone NS SECONDS: wait until --list-sas shows no IKE SA.
sw_wait_gone() {
  local i
  for i in $(seq 1 $(($2 * 5))); do
    sw_list "$1" | grep -q ESTABLISHED || return 0
    sleep 0.2
  done
  return 1
}

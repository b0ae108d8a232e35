#!/bin/bash
# Lambent's pool of sandbox network namespaces (src/sandbox/netns-pool.ts): each one `lambent-N`
# (/run/netns/lambent-N), wired to the server's namespace by a veth pair, host side `lmbN` with
# POOL.(2N) and the namespace side `eth0` with POOL.(2N+1) (a /31), routed out through one
# masquerade rule per pool range. Index N is claimed by the file /run/lambent/netns/N (holding the owner's
# instance id), made atomically by the server before it asks for `create`.
#
# usage: netns.sh rules POOL_CIDR           install the shared host rules (idempotent), turn on forwarding
#        netns.sh create N HOST_IP NS_IP    make namespace N (what an earlier holder of N left goes first)
#        netns.sh delete N...               remove namespaces N… (the server then removes their claims)
#        netns.sh sweep INSTANCE_ID         remove every namespace claimed by INSTANCE_ID
set -u
CLAIMS=/run/lambent/netns
IPT=(-w 10)

# Removes namespaces N… (one `ip` for all; their veths go with them, and any veth whose namespace
# a process still holds goes now too).
remove() {
  local n namespaces="" links=""
  for n in "$@"; do
    [ -e "/run/netns/lambent-$n" ] && namespaces+="netns del lambent-$n"$'\n'
  done
  [ -n "$namespaces" ] && printf '%s' "$namespaces" | ip -force -batch - 2>/dev/null
  for n in "$@"; do
    [ -e "/proc/sys/net/ipv4/conf/lmb$n" ] && links+="link del lmb$n"$'\n'
  done
  [ -n "$links" ] && printf '%s' "$links" | ip -force -batch - 2>/dev/null
  return 0
}

case ${1:-} in
rules)
  pool=$2
  # Sandbox → host (any of its addresses, the veth's own side and 0.0.0.0-bound services included):
  # refused. Sandbox → sandbox: refused. Nothing outside opens a connection into a sandbox (the host's
  # own processes included); replies to what a sandbox opened come back. Sources outside the pools
  # are dropped (no spoofing, though the sandbox user cannot spoof anyway). slirp4netns's range
  # (10.0.2.0/24: its host alias .2, its DNS .3) means nothing here and is refused, never routed out.
  # These chains are the same for every server of the machine and rewritten whole; each pool's range
  # (servers may use different ones) is added to LAMBENT-SANDBOX-SRC and -NAT, never removed by another.
  iptables "${IPT[@]}" -n -L LAMBENT-SANDBOX-SRC >/dev/null 2>&1 || iptables "${IPT[@]}" -N LAMBENT-SANDBOX-SRC || exit 1
  iptables "${IPT[@]}" -t nat -n -L LAMBENT-SANDBOX-NAT >/dev/null 2>&1 ||
    iptables "${IPT[@]}" -t nat -N LAMBENT-SANDBOX-NAT || exit 1
  iptables-restore "${IPT[@]}" --noflush <<EOF || exit 1
*filter
:LAMBENT-SANDBOX-IN - [0:0]
:LAMBENT-SANDBOX-FWD - [0:0]
:LAMBENT-SANDBOX-OUT - [0:0]
-A LAMBENT-SANDBOX-IN -p tcp -j REJECT --reject-with tcp-reset
-A LAMBENT-SANDBOX-IN -j REJECT --reject-with icmp-port-unreachable
-A LAMBENT-SANDBOX-FWD -i lmb+ -o lmb+ -j REJECT --reject-with icmp-port-unreachable
-A LAMBENT-SANDBOX-FWD -o lmb+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LAMBENT-SANDBOX-FWD -o lmb+ -j DROP
-A LAMBENT-SANDBOX-FWD -i lmb+ -d 10.0.2.0/24 -p tcp -j REJECT --reject-with tcp-reset
-A LAMBENT-SANDBOX-FWD -i lmb+ -d 10.0.2.0/24 -j REJECT --reject-with icmp-port-unreachable
-A LAMBENT-SANDBOX-FWD -i lmb+ -j LAMBENT-SANDBOX-SRC
-A LAMBENT-SANDBOX-FWD -i lmb+ -j DROP
-A LAMBENT-SANDBOX-OUT -o lmb+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LAMBENT-SANDBOX-OUT -o lmb+ -p tcp -j REJECT --reject-with tcp-reset
-A LAMBENT-SANDBOX-OUT -o lmb+ -j REJECT --reject-with icmp-port-unreachable
COMMIT
EOF
  jump() {
    local table=$1 chain=$2
    shift 2
    iptables "${IPT[@]}" -t "$table" -C "$chain" "$@" 2>/dev/null ||
      iptables "${IPT[@]}" -t "$table" -I "$chain" 1 "$@" || exit 1
  }
  jump filter LAMBENT-SANDBOX-SRC -s "$pool" -j ACCEPT
  jump nat LAMBENT-SANDBOX-NAT -s "$pool" ! -o lmb+ -j MASQUERADE
  jump filter INPUT -i lmb+ -j LAMBENT-SANDBOX-IN
  jump filter FORWARD -j LAMBENT-SANDBOX-FWD
  jump filter OUTPUT -o lmb+ -j LAMBENT-SANDBOX-OUT
  jump nat POSTROUTING -s "$pool" -j LAMBENT-SANDBOX-NAT
  # Routing for the veths (the FORWARD chain above decides what is forwarded).
  [ "$(</proc/sys/net/ipv4/ip_forward)" = 1 ] || echo 1 >/proc/sys/net/ipv4/ip_forward || exit 1
  ;;
create)
  n=$2 host=$3 inside=$4
  remove "$n"
  # The address may have been an earlier namespace's: its NAT entries (a UDP flow's replies, a TCP
  # connection's late segments) must not reach the new holder. Without the conntrack tool they age
  # out on their own; indexes are claimed at random, so reuse soon after is rare.
  if command -v conntrack >/dev/null 2>&1; then conntrack -D -s "$inside" >/dev/null 2>&1 || true; fi
  set -e
  # One `ip` for the host side (each exec is a fork and milliseconds of CPU while sandboxes start).
  # Nothing crosses the veth before its namespace side is up, below, after the host side's settings.
  ip -batch - <<EOF
netns add lambent-$n
link add lmb$n type veth peer name eth0 netns lambent-$n
addr add $host/31 dev lmb$n
link set lmb$n up
EOF
  # No IPv6 on the host side (no link-local way to the host); strict reverse-path filtering.
  echo 1 >"/proc/sys/net/ipv6/conf/lmb$n/disable_ipv6" 2>/dev/null || true
  echo 1 >"/proc/sys/net/ipv4/conf/lmb$n/rp_filter"
  # Inside: loopback (with sandbox.localdomain's address), the veth, a default route via the host.
  ip -n "lambent-$n" -batch - <<EOF
link set lo up
addr add 10.0.2.100/32 dev lo
addr add $inside/31 dev eth0
link set eth0 up
route add default via $host dev eth0
EOF
  ;;
delete)
  shift
  remove "$@"
  ;;
sweep)
  instance=$2 claimed=()
  for claim in "$CLAIMS"/*; do
    [ -f "$claim" ] && [ "$(<"$claim")" = "$instance" ] && claimed+=("${claim##*/}")
  done
  [ ${#claimed[@]} -gt 0 ] || exit 0
  remove "${claimed[@]}"
  for n in "${claimed[@]}"; do rm -f "$CLAIMS/$n"; done
  ;;
*)
  echo "usage: netns.sh rules|create|delete|sweep …" >&2
  exit 2
  ;;
esac
exit 0

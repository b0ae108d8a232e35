#!/usr/bin/env bash
# Installs the system packages Lambent's bwrap sandbox driver uses, when they are missing and we
# can (root on Debian/Ubuntu). Idempotent, and quiet when there is nothing to do.
#   bwrap            bubblewrap   namespaces, read-only root, /var/task, private /tmp
#   slirp4netns      slirp4netns  outbound network for a sandbox's own network namespace
#   iptables-restore iptables     route the namespace's 127.0.0.1:PORT to the host's loopback
#   socat            socat        AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 → the per-sandbox Unix socket
#   nsenter, setpriv util-linux   enter a sandbox's netns; drop to the sandbox user
#   ip               iproute2     the pool of sandbox network namespaces (veth pairs, addresses, routes)
#   conntrack        conntrack    a pooled namespace's address is reused: the last holder's NAT entries go first
#   /usr/bin/python3 python3      python3.11 runs on bookworm's system interpreter
#   debootstrap      debootstrap  Python runtimes of other versions are Debian root filesystems
# With --test also chromium (the console's browser tests drive it headless with playwright-core).
#
# Without --test (npm install's `prepare`) it never fails its caller: without these packages
# Lambent still runs, with the unisolated process driver, and says so.
# With --test (npm test) it also installs what the test suite builds with (the official
# aws-lambda-ric's native client needs autoconf, automake, libtool, cmake, make and g++; the
# conformance suite drives Debian's AWS CLI v2 (awscli, /usr/bin/aws) and boto3 too), and
# any package it cannot install fails the run: the tests need the real sandbox.
set -euo pipefail

test_mode=false
[ "${1-}" = "--test" ] && test_mode=true

missing=()
need() { # need <command> <package>
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] || missing+=("$2")
}
need bwrap bubblewrap
need slirp4netns slirp4netns
need iptables-restore iptables
need socat socat
need nsenter util-linux
need setpriv util-linux
need ip iproute2
need conntrack conntrack
need debootstrap debootstrap
[ -x /usr/bin/python3 ] || missing+=(python3)
if $test_mode; then
  need autoconf autoconf
  need automake automake
  need libtoolize libtool
  need cmake cmake
  need make make
  need g++ g++
  need chromium chromium
  [ -x /usr/bin/aws ] || missing+=(awscli)
  /usr/bin/python3 -c "import boto3" 2>/dev/null || missing+=(python3-boto3)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
packages=${packages% }

fail() {
  if $test_mode; then
    echo "lambent: FAILED: the test suite needs the system packages $packages: $1" >&2
    exit 1
  fi
  echo "lambent: $1; sandboxes fall back to weaker isolation (see /health)." >&2
  exit 0
}
[ "$(uname -s)" = Linux ] || fail "not Linux"
[ "$(id -u)" = 0 ] || fail "missing system packages: $packages (run as root to install them)"
command -v apt-get >/dev/null 2>&1 || fail "missing system packages: $packages (no apt-get to install them)"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
echo "lambent: installing system packages: $packages" >&2
echo "lambent:   apt-get update (usually 10-30 s)…" >&2
if ! apt-get update -q >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  fail "apt-get update failed (output above)"
fi
echo "lambent:   apt-get install $packages (usually 10-60 s)…" >&2
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $packages >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  fail "apt-get install $packages failed (output above)"
fi
echo "lambent:   system packages installed" >&2

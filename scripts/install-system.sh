#!/bin/sh
# Installs the system packages Lambent's bwrap sandbox driver uses, when they are missing and we
# can (root on Debian/Ubuntu). Idempotent, quiet when there is nothing to do, and never fails its
# caller: without these packages Lambent still runs, with the unisolated process driver, and says so.
#   bwrap            bubblewrap   namespaces, read-only root, /var/task, private /tmp
#   slirp4netns      slirp4netns  outbound network for a sandbox's own network namespace
#   iptables-restore iptables     route the namespace's 127.0.0.1:PORT to the host's loopback
#   socat            socat        AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 → the per-sandbox Unix socket
#   nsenter, setpriv util-linux   enter a sandbox's netns; drop to the sandbox user
#   /usr/bin/python3 python3      the python3.x runtimes run on the system interpreter
# With --test it also installs what the test suite builds with (the official aws-lambda-ric's
# native client needs autoconf, automake, libtool, cmake, make and g++).
set -u

missing=""
need() { # need <command> <package>
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] || missing="$missing $2"
}
need bwrap bubblewrap
need slirp4netns slirp4netns
need iptables-restore iptables
need socat socat
need nsenter util-linux
need setpriv util-linux
[ -x /usr/bin/python3 ] || missing="$missing python3"
if [ "${1-}" = "--test" ]; then
  need autoconf autoconf
  need automake automake
  need libtoolize libtool
  need cmake cmake
  need make make
  need g++ g++
fi
[ -z "$missing" ] && exit 0

warn() { echo "lambent: $1; sandboxes fall back to weaker isolation (see /health)." >&2; exit 0; }
[ "$(uname -s)" = Linux ] || exit 0
[ "$(id -u)" = 0 ] || warn "missing system packages:$missing (run as root to install them)"
command -v apt-get >/dev/null 2>&1 || warn "missing system packages:$missing (no apt-get to install them)"

packages=$(printf '%s\n' $missing | sort -u | tr '\n' ' ')
echo "lambent: installing system packages: $packages" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages; } >/dev/null 2>&1; then
  warn "could not install $packages"
fi

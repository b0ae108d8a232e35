#!/bin/bash
# Lambent's in-sandbox launcher, used only for environments with external extensions (functions without
# them exec their runtime directly). Run inside the sandbox, in the same namespaces and cgroups as the runtime:
#
#   launcher.sh /opt/extensions/a /opt/extensions/b -- <runtime argv...>
#
# 1. starts each extension (Extension init) and reports its exit to the worker whenever it happens;
# 2. waits for the worker's go-ahead (every extension registered and called event/next), then starts the runtime;
# 3. on the worker's Shutdown order sends SIGTERM to the runtime; reports the runtime's exit and waits to be killed,
#    so extensions still get their SHUTDOWN event after a crash.
#
# It talks to the worker over the environment's Runtime API endpoint (AWS_LAMBDA_RUNTIME_API) with bash's /dev/tcp.
api=${AWS_LAMBDA_RUNTIME_API:-127.0.0.1:9001}
host=${api%:*}
port=${api##*:}

# ctl METHOD PATH: one request; prints the status code once the worker answers (it may hold the answer).
ctl() {
  local fd line
  exec {fd}<>"/dev/tcp/$host/$port" || return 1
  printf '%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' "$1" "$2" >&"$fd"
  IFS=' ' read -r _ line _ <&"$fd"
  exec {fd}<&-
  printf '%s' "$line"
}

while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  ext=$1
  shift
  (
    "$ext"
    ctl POST "/lambent/launcher/extension-exited?name=${ext##*/}&code=$?" >/dev/null
  ) &
done
shift

[ "$(ctl GET /lambent/launcher/go)" = "200" ] || exit 1

"$@" &
runtime=$!
(
  [ "$(ctl GET /lambent/launcher/shutdown)" = "200" ] && kill -TERM "$runtime" 2>/dev/null
) &
wait "$runtime"
ctl POST "/lambent/launcher/runtime-exited?code=$?" >/dev/null
# The worker ends the sandbox once extensions had their SHUTDOWN; should it go away, end with the runtime.
exit 1

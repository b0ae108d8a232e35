#!/bin/bash
# Lambent's sandbox watchdog: one per server, started detached (its own session) with a pipe from
# the server on stdin. When the pipe closes — the server exited, crashed or was killed with -9 — it
# kills every process left in the server's cgroups (freeze → SIGKILL all → thaw, until empty; a
# SIGKILL to a frozen task waits for the thaw that a dead server never sends), removes the cgroups,
# unmounts what the server mounted under its run dir (its stage: overlays, /tmp disks, stem cells'
# mount points), detaches its /tmp disks' loop devices and deletes their images, deletes its pooled
# network namespaces (their veths go with them), drops its registration, and exits.
# It runs as root outside every sandbox namespace, so no sandbox can signal it.
#
# usage: watchdog.sh INSTANCE_ID RUN_DIR REGISTRY_FILE PID_FILE FREEZER_ROOT|- CGROUP_ROOT...
set -u
instance=$1 run_dir=$2 registry=$3 pid_file=$4 freezer=$5
shift 5
roots=("$@")
trap '' INT TERM HUP QUIT PIPE
echo -1000 >/proc/self/oom_score_adj 2>/dev/null

# Wait for end of file on stdin (bash's builtin read: no process of its own).
while IFS= read -r _; do :; done

nap() { read -r -t "$1" _ <>/proc/self/fd/99 2>/dev/null || true; }
exec 99<> <(:)

sweep() {
  local name=$1 deadline=$((SECONDS + 10)) pids root
  for root in "${roots[@]}"; do
    [ -w "$root/$name/cpu.cfs_quota_us" ] && echo -1 >"$root/$name/cpu.cfs_quota_us" 2>/dev/null
    # cgroup v2: one write kills the whole tree, frozen or not.
    [ -w "$root/$name/cgroup.kill" ] && echo 1 >"$root/$name/cgroup.kill" 2>/dev/null
  done
  while :; do
    pids=""
    for root in "${roots[@]}"; do
      [ -r "$root/$name/cgroup.procs" ] && pids+=" $(<"$root/$name/cgroup.procs")"
    done
    [ -z "${pids//[[:space:]]/}" ] && break
    [ "$SECONDS" -gt "$deadline" ] && break
    [ "$freezer" != - ] && echo FROZEN >"$freezer/$name/freezer.state" 2>/dev/null
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null
    [ "$freezer" != - ] && echo THAWED >"$freezer/$name/freezer.state" 2>/dev/null
    nap 0.005
  done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local left=0
    for root in "${roots[@]}"; do
      [ -d "$root/$name" ] && { rmdir "$root/$name" 2>/dev/null || left=1; }
    done
    [ "$left" = 0 ] && break
    nap 0.05
  done
}

for root in "${roots[@]}"; do
  [ -d "$root" ] || continue
  for dir in "$root"/*/; do
    [ -d "$dir" ] || continue
    name=${dir%/}
    sweep "${name##*/}"
  done
done

# Mounts under the run dir (stem-cell code mounts, read-only views), deepest first.
while IFS= read -r point; do
  umount -l "$point" 2>/dev/null
done < <(
  while read -r _ _ _ _ point _; do
    # mountinfo escapes space, tab, newline and backslash as \040-style octal: %b reads \0NNN.
    printf -v point '%b' "$point"
    case "$point" in "$run_dir" | "$run_dir"/*) printf '%d %s\n' "${#point}" "$point" ;; esac
  done </proc/self/mountinfo | sort -rn | cut -d' ' -f2-
)

# /tmp disks: loop devices backed by images in the run dir (each detaches with its last mount, but a
# start killed between losetup and mount leaves one attached), then the images.
for backing in /sys/block/loop*/loop/backing_file; do
  [ -r "$backing" ] || continue
  case "$(<"$backing")" in "$run_dir"/scratch/*)
    device=${backing#/sys/block/}
    losetup -d "/dev/${device%%/*}" 2>/dev/null
    ;;
  esac
done
rm -rf "$run_dir/scratch"

# Its pooled network namespaces and their veths (the shared host rules stay: see netns.sh).
/bin/bash "${BASH_SOURCE[0]%/*}/netns.sh" sweep "$instance" 2>/dev/null

for root in "${roots[@]}"; do rmdir "$root" 2>/dev/null; done
rm -f "$registry" "$pid_file"
exit 0

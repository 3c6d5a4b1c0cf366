#!/bin/bash
# wasmsharp doctor: checks, as containerd sees them, what running WebAssembly containers needs, and
# prints OK or FAIL with the fix for each. Usage: doctor.sh [--pid PID]   (default: the running containerd)
# Exit status: 0 when every check passes, 1 otherwise.
set -uo pipefail

SHIM=containerd-shim-wasmsharp-v1
RUNTIME_TYPE=io.containerd.wasmsharp.v1
HANDLER=wasmsharp
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
INSTALL=$HERE/install.sh
[ -x "$INSTALL" ] || INSTALL=/usr/share/wasmsharp/install.sh

PID=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pid) PID=$2; shift 2 ;;
    -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "doctor.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

failures=0
ok() { printf 'OK    %-22s %s\n' "$1" "$2"; }
fail() {
  printf 'FAIL  %-22s %s\n' "$1" "$2"
  shift 2
  for fix in "$@"; do printf '      %-22s fix: %s\n' "" "$fix"; done
  failures=$((failures + 1))
}

# ---- containerd -----------------------------------------------------------------------------------------
if [ -z "$PID" ]; then
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = containerd ] || continue
    # Prefer the one with the default config (the system's), else the first.
    if ! tr '\0' '\n' < "$p/cmdline" 2>/dev/null | grep -qx -e --config -e -c; then PID=${p#/proc/}; break; fi
    [ -n "$PID" ] || PID=${p#/proc/}
  done
fi
if [ -z "$PID" ] || [ ! -r "/proc/$PID/environ" ]; then
  fail containerd "no running containerd found${PID:+ (pid $PID not readable)}" \
    "start it (systemctl start containerd), run this as root, or pass --pid PID"
  exit 1
fi
mapfile -d '' ARGS < "/proc/$PID/cmdline"
EXE=/proc/$PID/exe # runs the binary containerd runs, even if the file was replaced since
VERSION=$("$EXE" --version 2>/dev/null | awk '{ print $3 }')
ok containerd "pid $PID, ${VERSION:-unknown version} ($(readlink "/proc/$PID/exe"))"

envvar() { tr '\0' '\n' < "/proc/$PID/environ" | sed -n "s/^$1=//p" | head -1; }
CD_PATH=$(envvar PATH)

# ---- the shim on containerd's PATH (containerd also looks next to its own binary) ------------------------
shim=""
IFS=: read -ra dirs <<< "$CD_PATH"
for d in "${dirs[@]}" "$(dirname "$(readlink "/proc/$PID/exe")")"; do
  [ -n "$d" ] || continue
  case "$d" in /*) ;; *) d=$(readlink -f "/proc/$PID/cwd/$d") ;; esac
  if [ -x "$d/$SHIM" ]; then shim=$d/$SHIM; break; fi
done
if [ -n "$shim" ]; then
  ok "shim on PATH" "$shim"
else
  fail "shim on PATH" "$SHIM is in none of containerd's PATH directories (PATH=${CD_PATH:-unset})" \
    "sudo $INSTALL --binaries-only   (installs it into /usr/local/bin), or copy it into one of those directories"
fi

# ---- the shim runs, and libwasmtime.so loads ------------------------------------------------------------
if [ -n "$shim" ]; then
  if version=$("$shim" --version 2>&1); then
    ok "shim runs" "$(echo "$version" | sed -n 's/^ *Version: *//p')"
  else
    fail "shim runs" "$shim --version failed: $(echo "$version" | tail -1)" "reinstall it: sudo $INSTALL --binaries-only"
  fi
  # OCI Wasm artifact images (module in a layer) and gRPC-mode containers need the companion binary, which
  # the shim runs from the directory of its real file.
  grpc=$(dirname "$(readlink -f "$shim")")/containerd-shim-wasmsharp-grpc
  if [ -x "$grpc" ]; then
    ok "gRPC companion" "$grpc (Wasm artifact images, gRPC mode)"
  else
    fail "gRPC companion" "$grpc is missing: images whose module is a Wasm layer (not a file in the rootfs) and gRPC-mode containers fail" \
      "sudo $INSTALL --binaries-only   (installs it next to the shim)"
  fi
  # The shim loads libwasmtime.so from the directory of its real file (symlinks resolved), then the loader's path.
  lib=$(dirname "$(readlink -f "$shim")")/libwasmtime.so
  [ -f "$lib" ] || lib=$(ldconfig -p 2>/dev/null | awk '/libwasmtime\.so / { print $NF; exit }')
  if [ -z "$lib" ]; then
    fail libwasmtime.so "not next to $shim nor known to the dynamic loader" "copy libwasmtime.so next to the shim: sudo $INSTALL --binaries-only"
  elif out=$(LD_PRELOAD=$lib /bin/true 2>&1) && [ -z "$out" ]; then
    ok libwasmtime.so "$lib loads"
  else
    fail libwasmtime.so "$lib does not load: $out" "reinstall it from the same build as the shim: sudo $INSTALL --binaries-only"
  fi
fi

# ---- the runtime in containerd's (CRI) config -----------------------------------------------------------
config=/etc/containerd/config.toml
for ((i = 0; i < ${#ARGS[@]}; i++)); do
  case "${ARGS[i]}" in
    --config|-c) config=${ARGS[i+1]:-} ;;
    --config=*) config=${ARGS[i]#--config=} ;;
  esac
done
case "$config" in /*) ;; *) config=$(readlink -f "/proc/$PID/cwd/$config") ;; esac
if [ ! -f "$config" ]; then
  fail "runtime in config" "containerd's config $config does not exist, so the CRI plugin does not know the $HANDLER runtime" \
    "sudo $INSTALL --config-only --config $config   (writes a minimal config), then restart containerd"
elif ! dump=$("$EXE" --config "$config" config dump 2>&1); then
  fail "runtime in config" "containerd cannot load $config: $(echo "$dump" | tail -1)" "fix $config (containerd config default shows a valid one)"
elif echo "$dump" | grep -q "runtimes\\.$HANDLER\\]" && echo "$dump" | grep -q "runtime_type = [\"']$RUNTIME_TYPE[\"']"; then
  ok "runtime in config" "$HANDLER -> $RUNTIME_TYPE in $config"
elif cri_off=$(echo "$dump" | grep -E "disabled_plugins = \\[.*io\\.containerd\\.(grpc\\.v1\\.cri|cri\\.v1)") &&
     grep -Eq "^[[:space:]]*\\[[[:space:]]*plugins\\.[\"'](io\\.containerd\\.grpc\\.v1\\.cri|io\\.containerd\\.cri\\.v1\\.runtime)[\"']\\.containerd\\.runtimes\\.$HANDLER[[:space:]]*\\]" "$config"; then
  # containerd 1.x leaves a disabled plugin's section out of the dump; the file has the entry.
  ok "runtime in config" "$HANDLER in $config (the CRI plugin is disabled there: the entry applies once it is enabled)"
else
  note=""
  [ -n "${cri_off:-}" ] && note=" (the CRI plugin is disabled here: ctr --runtime $RUNTIME_TYPE still works)"
  fail "runtime in config" "$config has no $HANDLER runtime for CRI/Kubernetes$note" \
    "sudo $INSTALL --config-only --config $config   (then it restarts containerd if systemd runs it)"
fi

# ---- the compiled-module cache ---------------------------------------------------------------------------
cache=$(envvar WASMSHARP_CACHE_DIR)
cache=${cache:-/var/lib/wasmsharp/cache}
if [ "$cache" = off ]; then
  ok "module cache" "disabled (WASMSHARP_CACHE_DIR=off): every container compiles its module"
elif [ -e "$cache" ] && [ ! -d "$cache" ]; then
  fail "module cache" "$cache exists and is not a directory" "sudo rm $cache   (the shim recreates it)"
elif [ -d "$cache" ]; then
  mode=$(stat -c %a "$cache") owner=$(stat -c %u "$cache")
  if [ "$owner" != 0 ]; then
    fail "module cache" "$cache is owned by uid $owner, not root (entries are native code the shim runs)" "sudo chown -R root: $cache"
  elif [ $((8#$mode & 8#022)) != 0 ]; then
    fail "module cache" "$cache is writable by group or others (mode $mode)" "sudo chmod 0700 $cache"
  else
    ok "module cache" "$cache (mode $mode, $(du -sh "$cache" 2>/dev/null | cut -f1))"
  fi
else
  parent=$(dirname "$cache")
  while [ ! -e "$parent" ]; do parent=$(dirname "$parent"); done
  if [ -d "$parent" ] && [ -w "$parent" ]; then
    ok "module cache" "$cache (created by the first container)"
  else
    fail "module cache" "$cache cannot be created under $parent" "sudo mkdir -p -m 0700 $cache, or set WASMSHARP_CACHE_DIR in containerd's environment"
  fi
fi

# ---- spare shims ----------------------------------------------------------------------------------------
spare=$(envvar WASMSHARP_SPARE_SHIM)
if [ "$spare" = off ]; then
  ok "spare shim" "off (WASMSHARP_SPARE_SHIM=off): each container waits for a new shim process to start"
else
  address=$(echo "${dump:-}" | sed -n '/^\[grpc\]/,/^\[/s/^ *address = "\(.*\)"/\1/p' | head -1)
  address=${address:-/run/containerd/containerd.sock}
  waiting=0
  for p in /proc/[0-9]*; do
    tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q -- "-spare .* -address $address " && waiting=$((waiting + 1))
  done
  ok "spare shim" "on: $waiting waiting for containerd at $address (one, once a Wasm container has started)"
fi

# ---- cgroups ---------------------------------------------------------------------------------------------
case "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" in
  cgroup2fs) ok cgroups "v2 (unified)" ;;
  tmpfs) if [ -d /sys/fs/cgroup/unified ]; then ok cgroups "v1 (hybrid, v2 at /sys/fs/cgroup/unified)"; else ok cgroups "v1 (legacy)"; fi ;;
  *) fail cgroups "no cgroup file system at /sys/fs/cgroup" "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)" ;;
esac

if [ $failures = 0 ]; then echo "all checks passed"; exit 0; fi
echo "$failures check(s) failed"
exit 1

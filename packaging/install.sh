#!/bin/bash
# Installs containerd-shim-wasmsharp-v1 (with the libwasmtime.so it loads from its own directory and
# containerd-shim-wasmsharp-grpc, which it runs for gRPC-mode shims and OCI Wasm artifact images) where
# containerd finds shims, and registers the runtime with containerd's CRI plugin (for Kubernetes
# RuntimeClass handler "wasmsharp") without disturbing the rest of the configuration:
#   - config version 2 (containerd 1.6/1.7; 2.x reads it too): [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasmsharp]
#   - config version 3 (containerd 2.x):                      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.wasmsharp]
# The version comes from the file's `version = N` line, or, with no file yet, from `containerd --version`.
# The existing file is backed up, the new one is checked with containerd's own parser (`config dump`)
# before it replaces the old one, and nothing is written when the runtime is already there. A file this
# script cannot extend safely (version 1, inline tables, a different wasmsharp entry) is left untouched
# and the reason printed. Finally containerd is restarted if systemd runs it (running containers survive).
set -euo pipefail

RUNTIME_TYPE=io.containerd.wasmsharp.v1
HANDLER=wasmsharp
SHIM=containerd-shim-wasmsharp-v1
SHIM_GRPC=containerd-shim-wasmsharp-grpc

usage() {
  cat <<EOF
usage: install.sh [options]
  --from DIR            where $SHIM, $SHIM_GRPC and libwasmtime.so are (default: next to this script,
                        /usr/lib/wasmsharp, or the repository's out/shim)
  --bin-dir DIR         install them here, on containerd's PATH (default: /usr/local/bin)
  --config FILE         containerd's config (default: /etc/containerd/config.toml)
  --containerd BIN      containerd binary, for its version and to check the new config (default: containerd on PATH)
  --runtime-platform P  containerd 2.x only: pull images for this handler for platform P (e.g. wasi/wasm);
                        by default images are pulled for the host platform, as wasmsharp-image builds them
  --config-only         only change the config (no binaries)
  --binaries-only       only install the binaries (no config)
  --no-restart          do not restart containerd
EOF
}

FROM="" BIN_DIR=/usr/local/bin CONFIG=/etc/containerd/config.toml CONTAINERD="" PLATFORM=""
DO_BIN=1 DO_CONFIG=1 RESTART=1
while [ $# -gt 0 ]; do
  case "$1" in
    --from) FROM=$2; shift 2 ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --containerd) CONTAINERD=$2; shift 2 ;;
    --runtime-platform) PLATFORM=$2; shift 2 ;;
    --config-only) DO_BIN=0; shift ;;
    --binaries-only) DO_CONFIG=0; shift ;;
    --no-restart) RESTART=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

refuse() {
  echo "install.sh: $CONFIG left unchanged: $*" >&2
  exit 3
}

CONTAINERD=${CONTAINERD:-$(command -v containerd || true)}

# The pid of a running containerd, if any (the first one whose executable is named containerd).
containerd_pid() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = containerd ] && { echo "${p#/proc/}"; return 0; }
  done
  return 0   # none running: not an error (set -e would end the script here otherwise)
}

# ---- binaries -----------------------------------------------------------------------------------------
if [ $DO_BIN = 1 ]; then
  if [ -z "$FROM" ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    for d in "$here" /usr/lib/wasmsharp "$here/../out/shim"; do
      [ -x "$d/$SHIM" ] && { FROM=$d; break; }
    done
    [ -n "$FROM" ] || { echo "install.sh: $SHIM not found; build it (make publish) or pass --from DIR" >&2; exit 2; }
  fi
  for f in "$SHIM" "$SHIM_GRPC" libwasmtime.so; do
    [ -f "$FROM/$f" ] || { echo "install.sh: $FROM/$f is missing" >&2; exit 2; }
  done
  install -d "$BIN_DIR"
  # Through a temporary name and rename: a shim that is running keeps its old inode.
  install -m 0755 "$FROM/$SHIM" "$BIN_DIR/.$SHIM.new" && mv -f "$BIN_DIR/.$SHIM.new" "$BIN_DIR/$SHIM"
  install -m 0755 "$FROM/$SHIM_GRPC" "$BIN_DIR/.$SHIM_GRPC.new" && mv -f "$BIN_DIR/.$SHIM_GRPC.new" "$BIN_DIR/$SHIM_GRPC"
  install -m 0644 "$FROM/libwasmtime.so" "$BIN_DIR/.libwasmtime.so.new" && mv -f "$BIN_DIR/.libwasmtime.so.new" "$BIN_DIR/libwasmtime.so"
  echo "installed $BIN_DIR/$SHIM, $BIN_DIR/$SHIM_GRPC and $BIN_DIR/libwasmtime.so"
  pid=$(containerd_pid)
  if [ -n "$pid" ]; then
    path=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^PATH=//p')
    case ":$path:" in
      *":$BIN_DIR:"*) ;;
      *) echo "warning: $BIN_DIR is not on the PATH of the running containerd (pid $pid: PATH=$path); it will not find the shim" >&2 ;;
    esac
  fi
fi

[ $DO_CONFIG = 1 ] || exit 0

# ---- config -------------------------------------------------------------------------------------------
major_of_containerd() {
  [ -n "$CONTAINERD" ] || return 0
  "$CONTAINERD" --version 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^v?[0-9]+\.[0-9]+/) { sub(/^v/, "", $i); split($i, v, "."); print v[1]; exit } }'
}
major=$(major_of_containerd)

# Top-level `version = N` (before the first table), or "none".
file_version() {
  awk '/^[[:space:]]*\[/ { exit } /^[[:space:]]*version[[:space:]]*=/ { gsub(/[^0-9]/, "", $0); print; found = 1; exit } END { if (!found) print "none" }' "$1"
}

if [ -s "$CONFIG" ]; then
  version=$(file_version "$CONFIG")
  case "$version" in
    2|3) ;;
    none) refuse "it has no \`version = 2\` or \`version = 3\` line (config version 1 is not supported; migrate it first: \`containerd config migrate\` in 2.x, or rewrite it from \`containerd config default\`)" ;;
    *) refuse "config version $version is not supported (expected 2 or 3)" ;;
  esac
  if [ "$version" = 3 ] && [ "$major" = 1 ]; then
    refuse "it is a version 3 config but $CONTAINERD is containerd 1.x, which reads only version 2"
  fi
else
  case "$major" in
    1) version=2 ;;
    2) version=3 ;;
    *) refuse "there is no config yet and the containerd version is unknown (${CONTAINERD:-containerd not found}); pass --containerd BIN" ;;
  esac
fi

if [ "$version" = 2 ]; then
  plugin='"io.containerd.grpc.v1.cri"'; runtime_table="plugins.$plugin.containerd.runtimes.$HANDLER"
else
  plugin="'io.containerd.cri.v1.runtime'"; runtime_table="plugins.$plugin.containerd.runtimes.$HANDLER"
fi
if [ -n "$PLATFORM" ] && [ "$version" = 2 ]; then
  refuse "--runtime-platform needs a version 3 config (containerd 2.x)"
fi

# A table header for the runtime in either quoting style, and what else could clash with appending one.
header_re="^[[:space:]]*\\[[[:space:]]*plugins\\.[\"'](io\\.containerd\\.grpc\\.v1\\.cri|io\\.containerd\\.cri\\.v1\\.runtime)[\"']\\.containerd\\.runtimes\\.$HANDLER[[:space:]]*\\]"
if [ -s "$CONFIG" ] && grep -Eq "$header_re" "$CONFIG"; then
  # Already there: fine if it names our runtime type, else a human must decide.
  type=$(awk -v re="$header_re" '$0 ~ re { inside = 1; next } /^[[:space:]]*\[/ { inside = 0 } inside && /^[[:space:]]*runtime_type[[:space:]]*=/ { sub(/^[^=]*=[[:space:]]*/, ""); gsub(/["'\'' ]/, ""); print; exit }' "$CONFIG")
  if [ "$type" = "$RUNTIME_TYPE" ]; then
    echo "$CONFIG already has the $HANDLER runtime ($RUNTIME_TYPE); nothing to change"
    changed=0
  else
    refuse "it already defines a $HANDLER runtime with runtime_type '${type:-(none)}'; fix it by hand (expected $RUNTIME_TYPE)"
  fi
else
  if [ -s "$CONFIG" ]; then
    grep -Eq "^[[:space:]]*\\[[[:space:]]*plugins\\.[\"']io\\.containerd\\.(grpc\\.v1\\.cri|cri\\.v1\\.runtime)[\"']\\.containerd\\.runtimes\\.$HANDLER\\." "$CONFIG" &&
      refuse "it has sub-tables of the $HANDLER runtime but not the runtime table itself"
    grep -Eq "runtimes\\.$HANDLER|$HANDLER[[:space:]]*=[[:space:]]*\\{" "$CONFIG" &&
      refuse "it mentions the $HANDLER runtime in a form this script does not edit (dotted keys or an inline table)"
    grep -Eq '^[[:space:]]*(plugins|"?io\.containerd\.[a-z0-9.]+"?|containerd|runtimes)[[:space:]]*=[[:space:]]*\{' "$CONFIG" &&
      refuse "it defines plugins, containerd or runtimes as an inline table, to which a table cannot be added"
  fi
  tmp=$(mktemp "$(dirname "$CONFIG")/.config.toml.wasmsharp.XXXXXX" 2>/dev/null || true)
  [ -n "$tmp" ] || { mkdir -p "$(dirname "$CONFIG")"; tmp=$(mktemp "$(dirname "$CONFIG")/.config.toml.wasmsharp.XXXXXX"); }
  trap 'rm -f "$tmp"' EXIT
  {
    if [ -s "$CONFIG" ]; then
      cat "$CONFIG"
      [ -z "$(tail -c1 "$CONFIG")" ] || echo
    else
      echo "version = $version"
    fi
    echo
    echo "# Added by wasmsharp's install.sh: WebAssembly containers (RuntimeClass handler \"$HANDLER\")."
    echo "[$runtime_table]"
    echo "  runtime_type = \"$RUNTIME_TYPE\""
    if [ -n "$PLATFORM" ]; then
      echo "[plugins.'io.containerd.cri.v1.images'.runtime_platforms.$HANDLER]"
      echo "  platform = \"$PLATFORM\""
    fi
  } > "$tmp"
  # containerd's own parser has the last word: the merged file must load and show the runtime. (Here-strings,
  # not `echo | grep -q`: grep -q leaves at its first match, echo then fails with EPIPE and pipefail says no.)
  if [ -n "$CONTAINERD" ]; then
    if ! dump=$("$CONTAINERD" --config "$tmp" config dump 2>&1); then
      refuse "containerd cannot load the merged config:
$(echo "$dump" | tail -5)"
    fi
    if ! { grep -q "runtimes\\.$HANDLER\\]" <<<"$dump" && grep -q "$RUNTIME_TYPE" <<<"$dump"; }; then
      # containerd 1.x leaves a disabled plugin's section out of the dump: the entry waits for CRI to be enabled.
      grep -Eq "disabled_plugins = \\[.*io\\.containerd\\.(grpc\\.v1\\.cri|cri\\.v1)" <<<"$dump" ||
        refuse "containerd loads the merged config but does not show the $HANDLER runtime in \`config dump\`"
      echo "note: the CRI plugin is disabled in $CONFIG: the runtime entry takes effect once it is enabled (ctr --runtime $RUNTIME_TYPE works without it)"
    fi
    # containerd 1.x replaces its built-in runtimes with the file's (2.x merges them): in a file that defines none
    # (Debian 12's own /etc/containerd/config.toml, or a new one) ours would drop runc, the default runtime, and the
    # CRI plugin would not load ("no corresponding runtime configured ... default_runtime_name"). Keep runc as
    # containerd's default config defines it.
    default=$(sed -n '/^[[:space:]]*default_runtime_name = "/{s/^[[:space:]]*default_runtime_name = "\(.*\)"[[:space:]]*$/\1/p;q}' <<<"$dump")
    if [ "$version" = 2 ] && [ "$default" = runc ] && ! grep -q 'runtimes\.runc\]' <<<"$dump"; then
      {
        echo "# Added by wasmsharp's install.sh: containerd's default runtime, which the table above would otherwise replace."
        echo "[plugins.$plugin.containerd.runtimes.runc]"
        echo "  runtime_type = \"io.containerd.runc.v2\""
      } >> "$tmp"
      dump=$("$CONTAINERD" --config "$tmp" config dump 2>&1) || refuse "containerd cannot load the merged config with runc kept:
$(echo "$dump" | tail -5)"
      grep -q 'runtimes\.runc\]' <<<"$dump" || refuse "containerd drops its default runtime runc from the merged config"
      echo "note: also added the runc runtime (containerd's default), which containerd 1.x drops once a config names runtimes"
    fi
  else
    echo "warning: containerd not found; the merged config was not checked with containerd's parser" >&2
  fi
  if [ -e "$CONFIG" ]; then
    backup="$CONFIG.bak-wasmsharp-$(date +%Y%m%d%H%M%S)"
    cp -p "$CONFIG" "$backup"
    chmod --reference="$CONFIG" "$tmp"
    echo "backed up $CONFIG to $backup"
  else
    chmod 0644 "$tmp"
  fi
  mv -f "$tmp" "$CONFIG"
  trap - EXIT
  echo "added [$runtime_table] to $CONFIG (config version $version)"
  changed=1
fi

# ---- restart ------------------------------------------------------------------------------------------
[ "$changed" = 1 ] || exit 0
if [ $RESTART = 0 ]; then
  echo "restart containerd to load the new config (running containers keep running)"
elif [ -d /run/systemd/system ] && systemctl is-active --quiet containerd 2>/dev/null; then
  echo "restarting containerd (systemctl restart containerd; running containers keep running)"
  systemctl restart containerd
  systemctl is-active --quiet containerd || { echo "install.sh: containerd did not come back; see journalctl -u containerd (backup: ${backup:-none})" >&2; exit 4; }
else
  echo "containerd is not managed by systemd here: restart it yourself to load the new config"
fi

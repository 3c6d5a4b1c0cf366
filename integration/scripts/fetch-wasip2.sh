#!/bin/bash
# What test-time WASI preview 2 components are built with: Debian 13's wasi-libc (it has a wasm32-wasip2
# sysroot; Debian 12's has none), extracted privately (dpkg -x, never installed), and jco from npm, which turns
# a wasip2 core module into a component exporting wasi:cli/run. Result: DEST/sysroot/usr/include/wasm32-wasip2,
# DEST/sysroot/usr/lib/wasm32-wasip2, DEST/jco/node_modules/.bin/jco. Idempotent.
set -euo pipefail
DEST=${1:-out/wasip2}
JCO_VERSION=1.35.0
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

if [ ! -f "$DEST/sysroot/usr/lib/wasm32-wasip2/crt1-command.o" ]; then
  work=$DEST/apt
  rm -rf "$work" "$DEST/sysroot" && mkdir -p "$work/debs" "$work/lists/partial"
  # The machine's own first Debian source stanza, pointed at trixie (deb822 needs the .sources name).
  awk 'NF==0{exit} {print}' /etc/apt/sources.list.d/debian.sources | sed "s/^Suites:.*/Suites: trixie/" > "$work/apt.sources"
  apt_opts=(-o "Dir::Etc::sourcelist=$work/apt.sources" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$work/lists"
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work/debs" && apt-get "${apt_opts[@]}" download wasi-libc -qq)
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$DEST/sysroot"; done
  rm -rf "$work"
fi

if [ ! -x "$DEST/jco/node_modules/.bin/jco" ]; then
  command -v npm >/dev/null || { echo "error: npm is required (Debian package npm)" >&2; exit 1; }
  npm install --silent --no-audit --no-fund --prefix "$DEST/jco" "@bytecodealliance/jco@$JCO_VERSION"
fi
echo "wasip2 sysroot: $DEST/sysroot; jco: $("$DEST/jco/node_modules/.bin/jco" --version)"

#!/bin/bash
# The SQLite shell (Debian 12's sqlite3 source package, with Debian's patches) built for wasm32-wasi: the
# real third-party program of the integration suite and the bench. Usage: build-sqlite-wasm.sh [OUT_DIR]
# Result: OUT_DIR/sqlite3.wasm (default out/sqlite). Cached: the source is fetched once, and the module is
# rebuilt only when this script, the compat headers or the source change. Changes nothing on the system
# (a private deb-src list, private apt lists); needs dpkg-dev, tcl, clang-16, lld-16, wasi-libc.
set -euo pipefail
OUT=${1:-out/sqlite}
CLANG=${WASMSHARP_CLANG:-clang-16}
HERE=$(cd "$(dirname "$0")" && pwd)
COMPAT=$HERE/sqlite3-wasi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# 1. Source: `apt-get source --download-only sqlite3` against a private deb-src list (Debian 12 ships
#    without deb-src lines), the machine's own mirror and suite.
if ! ls "$OUT"/src/sqlite3_*.dsc >/dev/null 2>&1; then
  rm -rf "$OUT/src" "$OUT/apt" && mkdir -p "$OUT/src" "$OUT/apt/lists/partial"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk 'NF==0{exit} {print}' /etc/apt/sources.list.d/debian.sources | sed 's/^Types:.*/Types: deb-src/' > "$OUT/apt/sources.sources"
  else
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$(. /etc/os-release && echo "$VERSION_CODENAME")" > "$OUT/apt/sources.sources"
  fi
  apt_opts=(-o "Dir::Etc::sourcelist=$OUT/apt/sources.sources" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$OUT/apt/lists"
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$OUT/src" && apt-get "${apt_opts[@]}" source --download-only -qq sqlite3)
  rm -rf "$OUT/apt"
fi
dsc=$(ls "$OUT"/src/sqlite3_*.dsc | head -1)

# What the module depends on: rebuilt when any of it changes.
stamp=$(cat "$0" "$COMPAT"/* "$dsc" | sha256sum | cut -c1-16)
if [ -f "$OUT/sqlite3.wasm" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$OUT/sqlite3.wasm"
  exit 0
fi

# 2. The amalgamation (sqlite3.c) and the shell (shell.c) are generated from the source tree with tclsh.
build=$OUT/build
rm -rf "$build" && mkdir -p "$build"
(cd "$build" && dpkg-source --no-check -x "$dsc" sqlite3 >/dev/null)
(cd "$build/sqlite3" && CC=$CLANG ./configure --disable-tcl -q >/dev/null && make -s sqlite3.c shell.c >/dev/null)

# 3. wasm32-wasi. SQLite 3.40 predates its own WASI support: wasi-compat.h stubs the owner/mode calls,
#    pwd.h stands in for the missing header, and locking is the dot-file VFS (WASI has no fcntl locks).
#    No threads, no WAL or mmap (shared memory), no extension loading, no popen/system in the shell.
flags=(--target=wasm32-wasi --sysroot=/usr -O2 -I"$COMPAT" -include "$COMPAT/wasi-compat.h"
       -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_WAL -DSQLITE_MAX_MMAP_SIZE=0
       -DSQLITE_OMIT_POPEN -DSQLITE_NOHAVE_SYSTEM '-DSQLITE_DEFAULT_UNIX_VFS="unix-dotfile"'
       -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_MMAN)
"$CLANG" "${flags[@]}" -c "$build/sqlite3/shell.c" -o "$build/shell.o" &
"$CLANG" "${flags[@]}" -c "$build/sqlite3/sqlite3.c" -o "$build/sqlite3.o" &
wait -n && wait -n
"$CLANG" --target=wasm32-wasi --sysroot=/usr -Wl,--strip-debug -o "$OUT/sqlite3.wasm.tmp" "$build/sqlite3.o" "$build/shell.o" \
  -lwasi-emulated-signal -lwasi-emulated-process-clocks -lwasi-emulated-getpid -lwasi-emulated-mman
mv "$OUT/sqlite3.wasm.tmp" "$OUT/sqlite3.wasm"
echo "$stamp" > "$OUT/stamp"
rm -rf "$build"
echo "$OUT/sqlite3.wasm"

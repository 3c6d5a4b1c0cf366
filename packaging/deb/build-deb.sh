#!/bin/bash
# Builds the wasmsharp Debian package with dpkg-deb. Usage: build-deb.sh SHIM_DIR IMAGE_TOOL_DIR OUT_DIR
#   SHIM_DIR        the published shim (containerd-shim-wasmsharp-v1, -grpc + libwasmtime.so), e.g. out/shim
#   IMAGE_TOOL_DIR  the built image tool (wasmsharp-image.dll + runtimeconfig); "-" to leave it out
# Layout: /usr/lib/wasmsharp/{shim, grpc shim, libwasmtime.so} (the shim loads the library from its own
# directory, and runs the -grpc binary from there for gRPC mode and OCI Wasm artifact images),
# /usr/bin/containerd-shim-wasmsharp-v1 -> that shim (containerd finds it on PATH), /usr/bin/wasmsharp-image
# (needs the .NET 10 runtime), /usr/sbin/wasmsharp-doctor, /usr/share/wasmsharp/{install.sh, docker, kubernetes}.
# The package does not edit containerd's config unless asked (WASMSHARP_CONFIGURE=1 at install time).
set -euo pipefail
SHIM_DIR=$1 TOOL_DIR=$2 OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
PKG=$(cd "$HERE/.." && pwd)
ROOT=$(cd "$PKG/.." && pwd)
SHIM=containerd-shim-wasmsharp-v1
SHIM_GRPC=containerd-shim-wasmsharp-grpc

[ -x "$SHIM_DIR/$SHIM" ] && [ -x "$SHIM_DIR/$SHIM_GRPC" ] && [ -f "$SHIM_DIR/libwasmtime.so" ] || { echo "build-deb.sh: no published shim in $SHIM_DIR (make publish)" >&2; exit 2; }
# "0.1.0+53e3289e..." -> "0.1.0+git53e3289"
upstream=$("$SHIM_DIR/$SHIM" --version | sed -n 's/^ *Version: *//p')
version=$(echo "$upstream" | sed -E 's/\+([0-9a-f]{7})[0-9a-f]*$/+git\1/')
arch=$(dpkg --print-architecture)
stage=$(mktemp -d) && chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT

install -d "$stage/DEBIAN" "$stage/usr/lib/wasmsharp" "$stage/usr/bin" "$stage/usr/sbin" \
  "$stage/usr/share/wasmsharp/docker" "$stage/usr/share/wasmsharp/kubernetes" "$stage/usr/share/doc/wasmsharp"
install -m 0755 "$SHIM_DIR/$SHIM" "$SHIM_DIR/$SHIM_GRPC" "$stage/usr/lib/wasmsharp/"
install -m 0644 "$SHIM_DIR/libwasmtime.so" "$stage/usr/lib/wasmsharp/libwasmtime.so"
ln -s "../lib/wasmsharp/$SHIM" "$stage/usr/bin/$SHIM"
install -m 0755 "$PKG/install.sh" "$PKG/doctor.sh" "$stage/usr/share/wasmsharp/"
ln -s ../share/wasmsharp/doctor.sh "$stage/usr/sbin/wasmsharp-doctor"
install -m 0644 "$PKG/docker/daemon.json" "$stage/usr/share/wasmsharp/docker/"
install -m 0644 "$PKG/kubernetes/runtimeclass.yaml" "$stage/usr/share/wasmsharp/kubernetes/"
install -m 0644 "$ROOT/README.md" "$stage/usr/share/doc/wasmsharp/README.md"
install -m 0644 "$ROOT/LICENSE" "$stage/usr/share/doc/wasmsharp/copyright"

suggests=""
if [ "$TOOL_DIR" != - ]; then
  install -d "$stage/usr/lib/wasmsharp/image-tool"
  # The tool and the one assembly it references (the Wasm header reader).
  for f in "$TOOL_DIR"/wasmsharp-image.dll "$TOOL_DIR"/wasmsharp-image.runtimeconfig.json "$TOOL_DIR"/wasmsharp-image.deps.json "$TOOL_DIR"/Wasmsharp.WasmFormat.dll; do
    [ -f "$f" ] || { echo "build-deb.sh: $f missing (dotnet build src/Wasmsharp.ImageTool -c Release)" >&2; exit 2; }
    install -m 0644 "$f" "$stage/usr/lib/wasmsharp/image-tool/"
  done
  cat > "$stage/usr/bin/wasmsharp-image" <<'EOF'
#!/bin/sh
# wasmsharp-image: builds OCI images of WebAssembly modules (a .NET 10 program).
command -v dotnet >/dev/null || { echo "wasmsharp-image needs the .NET 10 runtime (dotnet-runtime-10.0)" >&2; exit 127; }
exec dotnet /usr/lib/wasmsharp/image-tool/wasmsharp-image.dll "$@"
EOF
  chmod 0755 "$stage/usr/bin/wasmsharp-image"
  suggests="Suggests: dotnet-runtime-10.0"
fi

cat > "$stage/DEBIAN/control" <<EOF
Package: wasmsharp
Version: $version
Architecture: $arch
Maintainer: wasmsharp developers <wasmsharp@example.invalid>
Depends: libc6, containerd (>= 1.6) | containerd.io (>= 1.6)
${suggests:+$suggests
}Section: admin
Priority: optional
Installed-Size: $(du -sk "$stage/usr" | cut -f1)
Description: containerd shim running WebAssembly (WASI) containers with Wasmtime
 containerd-shim-wasmsharp-v1 (runtime io.containerd.wasmsharp.v1) runs the WASI module of an OCI
 image in-process with Wasmtime instead of a Linux container: ctr run --runtime io.containerd.wasmsharp.v1,
 Docker --runtime, or a Kubernetes RuntimeClass with handler "wasmsharp".
EOF

cat > "$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if [ "${WASMSHARP_CONFIGURE:-0}" = 1 ]; then
    /usr/share/wasmsharp/install.sh --config-only || echo "wasmsharp: configuring containerd failed; see above (the package is installed)"
  else
    cat <<'MSG'
wasmsharp: the shim is installed (/usr/bin/containerd-shim-wasmsharp-v1); `ctr run --runtime
io.containerd.wasmsharp.v1 ...` works now. For Kubernetes (CRI) add the runtime to containerd's config
(backed up, merged, containerd restarted):   sudo /usr/share/wasmsharp/install.sh --config-only
Check the setup:                            sudo wasmsharp-doctor
MSG
  fi
fi
EOF
chmod 0755 "$stage/DEBIAN/postinst"

mkdir -p "$OUT"
deb=$OUT/wasmsharp_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
echo "$deb"

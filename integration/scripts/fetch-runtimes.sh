#!/bin/bash
# Newer containerd and Docker Engine for the version matrix, from Debian 13 (trixie) and unstable (sid).
# They run on Debian 12 when extracted into a private directory (dpkg -x); installing them system-wide
# would pull a newer libc. Result: DEST/<suite>/root/usr/bin/{containerd,ctr,containerd-shim-runc-v2,dockerd,...}
# and DEST/<suite>/versions. Also Kubernetes' CRI API definitions (sid's golang-k8s-cri-api-dev) in
# DEST/cri-api/root/.../k8s.io/cri-api/pkg/apis/runtime/v1/api.proto, compiled by the integration harness.
# Idempotent: what is already fetched is left alone.
set -euo pipefail
DEST=${1:-out/runtimes}
SUITES=${SUITES-trixie sid}
# docker-cli: the client matching each dockerd (both run on Debian 12: they need glibc >= 2.34 only).
PACKAGES="containerd docker.io docker-cli tini"
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

# extract DIR SUITE PACKAGE...: downloads the packages from Debian SUITE and extracts them into DIR/root.
extract() {
  local dir=$1 suite=$2; shift 2
  rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/lists/partial"
  # The machine's own first Debian source stanza, pointed at $suite (deb822 needs the .sources name).
  awk 'NF==0{exit} {print}' /etc/apt/sources.list.d/debian.sources | sed "s/^Suites:.*/Suites: $suite/" > "$dir/apt.sources"
  apt_opts=(-o "Dir::Etc::sourcelist=$dir/apt.sources" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/lists"
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  local pkgs=("$@")
  # docker-init (for --init) links to tini-static: part of tini in trixie, its own package in sid.
  if [[ " ${pkgs[*]} " == *" tini "* ]] && apt-cache "${apt_opts[@]}" show tini-static >/dev/null 2>&1; then pkgs+=(tini-static); fi
  (cd "$dir/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}" -qq)
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
  rm -rf "$dir/debs" "$dir/lists"
}

for suite in $SUITES; do
  dir=$DEST/$suite
  [ -x "$dir/root/usr/bin/containerd" ] && [ -x "$dir/root/usr/sbin/dockerd" ] && [ -x "$dir/root/usr/bin/docker" ] && [ -x "$dir/root/usr/bin/docker-init" ] && continue
  extract "$dir" "$suite" $PACKAGES
  # Keep bookworm's runc: newer ones need a newer glibc.
  rm -f "$dir/root/usr/bin/runc" "$dir/root/usr/sbin/runc"
  {
    "$dir/root/usr/bin/containerd" --version
    "$dir/root/usr/sbin/dockerd" --version
    "$dir/root/usr/bin/docker" --version
  } > "$dir/versions"
done

cri=$DEST/cri-api
if [ -z "$(find "$cri/root" -path '*/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto' 2>/dev/null | head -1)" ]; then
  extract "$cri" sid golang-k8s-cri-api-dev
  find "$cri/root" -path '*/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto' | grep -q . ||
    { echo "fetch-runtimes.sh: golang-k8s-cri-api-dev has no k8s.io/cri-api/pkg/apis/runtime/v1/api.proto" >&2; exit 1; }
fi

for suite in $SUITES; do echo "$suite:"; sed 's/^/  /' "$DEST/$suite/versions"; done
echo "cri-api: $(find "$cri/root" -path '*/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto' | head -1)"

#!/usr/bin/env bash
# Makes sure a registry on 127.0.0.1:5000 serves the base images the examples and
# tests build from (testbed/busybox:latest, testbed/debian:bookworm), made offline.
# The shared test bed (../shared/testbed/up) is used when it is there, so the images
# are exactly those the conformance results were recorded with.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${KILN_SHARED_DIR:-$here/../shared}
if [ -x "$shared/testbed/up" ]; then
  exec "$shared/testbed/up"
fi
# Without the shared test bed: a registry and a busybox image of our own.
state=${TESTBED_DIR:-/var/tmp/kiln-testbed}
mkdir -p "$state"
if ! curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
  cat > "$state/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $state/registry}}
http: {addr: 127.0.0.1:5000}
YML
  setsid docker-registry serve "$state/registry.yml" >"$state/registry.log" 2>&1 </dev/null &
  for _ in $(seq 50); do curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && break; sleep 0.2; done
fi
if ! skopeo inspect --tls-verify=false docker://127.0.0.1:5000/testbed/busybox:latest >/dev/null 2>&1; then
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev}
  cp /bin/busybox "$root/bin/busybox"
  for a in $(/bin/busybox --list-full); do [ -e "$root/$a" ] || { mkdir -p "$root/$(dirname "$a")"; ln -s /bin/busybox "$root/$a"; }; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  chmod 1777 "$root/tmp"
  layout="$state/oci"
  [ -d "$layout" ] || umoci init --layout "$layout"
  umoci new --image "$layout:busybox"
  b=$(mktemp -d); umoci unpack --image "$layout:busybox" "$b/bundle" >/dev/null
  cp -a "$root/." "$b/bundle/rootfs/"
  umoci repack --image "$layout:busybox" "$b/bundle" >/dev/null
  umoci config --image "$layout:busybox" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd /bin/sh --os linux --architecture amd64
  skopeo copy -q --dest-tls-verify=false "oci:$layout:busybox" docker://127.0.0.1:5000/testbed/busybox:latest
  rm -rf "$root" "$b"
fi
echo "testbed: registry 127.0.0.1:5000 with testbed/busybox:latest"

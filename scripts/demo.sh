#!/usr/bin/env bash
# kiln's main job, end to end on this machine: builds examples/hello (a multi-stage
# Dockerfile with RUN steps and a cache mount) with the engine embedded in the kiln
# process, from base images served by a local registry made offline, into an OCI
# image tarball and a docker-loadable tarball. Run it twice: the second build is
# served from the cache.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
scripts/testbed.sh
cargo build --release --quiet -p kiln
out=${DEMO_OUT:-$here/target/demo}
mkdir -p "$out"
./target/release/kiln build --progress plain \
  -t kiln-example/hello:latest \
  -o "type=oci,dest=$out/hello.oci.tar" \
  -o "type=docker,dest=$out/hello.docker.tar" \
  --iidfile "$out/hello.iid" \
  examples/hello
echo
echo "image id: $(cat "$out/hello.iid")"
echo "OCI layout: $out/hello.oci.tar"
skopeo inspect --config "oci-archive:$out/hello.oci.tar" 2>/dev/null | grep -A3 '"Cmd"' || true
echo "docker tarball (docker load / podman load): $out/hello.docker.tar"

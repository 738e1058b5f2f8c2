#!/bin/sh
# Installs the tools the exporter's integration tests check kiln's outputs with:
# skopeo and umoci (OCI layouts), podman (docker tarballs), docker-registry (push).
# Tests whose tool is missing say so and skip that check.
set -eu
missing=""
for pair in skopeo:skopeo umoci:umoci podman:podman docker-registry:docker-registry; do
    bin=${pair%%:*}
    pkg=${pair#*:}
    command -v "$bin" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

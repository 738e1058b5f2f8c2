#!/usr/bin/env bash
# Installs what kiln and its tests need on a Debian machine (run as root):
# the OCI runtime for RUN steps, and the independent tools the tests check kiln's
# images with. Safe to run again: it installs only what is missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have runc || need+=(runc)
have skopeo || need+=(skopeo)
have umoci || need+=(umoci)
have docker-registry || need+=(docker-registry)
have podman || need+=(podman)
have debootstrap || need+=(debootstrap)
have zstd || need+=(zstd)
have xz || need+=(xz-utils)
have bzip2 || need+=(bzip2)
have git || need+=(git)
have ssh-agent || need+=(openssh-client)
have go || need+=(golang-go)
have curl || need+=(curl)
have file || need+=(file)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -q '^wget$' || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! have cargo; then
  echo "setup: cargo is missing; install a Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi

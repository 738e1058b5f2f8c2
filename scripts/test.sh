#!/usr/bin/env bash
# Runs every test: installs what the tests need, makes sure the local registry and
# base images are there, runs the workspace's tests (unit, integration — several
# need root, a registry on 127.0.0.1 and runc, which this machine and CI have), then
# the conformance suites (shared and the project's own cases), which fail on any case
# that passed before.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
scripts/testbed.sh
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast
scripts/conformance.sh "$here/target/debug/kiln"

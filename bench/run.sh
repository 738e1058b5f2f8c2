#!/usr/bin/env bash
# Times kiln on the shared benchmark workloads and prints a table against BuildKit's
# figures (ANCHORS.md) and kiln's targets.
#   bench/run.sh [workload...]        (default: every workload kiln can run)
# Environment:
#   KILN            a kiln binary to time (default: build the release binary)
#   KILN_BENCH_DIR  scratch directory: contexts (made once), state dirs, logs
#                   (default /var/tmp/kiln-bench)
#   KILN_BENCH_REPEAT  runs per measure, reduced to the median (default 3)
#   KILN_WORKLOADS  the workloads folder (default /work/shared/workloads)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=${KILN_BENCH_DIR:-/var/tmp/kiln-bench}
if [ -z "${KILN:-}" ]; then
  target=${CARGO_TARGET_DIR:-$here/target}
  (cd "$here" && cargo build --release -q -p kiln)
  KILN=$target/release/kiln
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: kiln needs root (mounts, runc); run as root" >&2
  exit 1
fi
registry=127.0.0.1:5000
if ! curl -fsS "http://$registry/v2/" >/dev/null 2>&1; then
  echo "bench: no registry on $registry; start the test bed first (scripts/testbed.sh)" >&2
  exit 1
fi
mkdir -p "$scratch"
stamp=$(date +%Y%m%d-%H%M%S)
exec python3 "$here/bench/bench.py" --kiln "$KILN" --scratch "$scratch" \
  --repeat "${KILN_BENCH_REPEAT:-3}" --json "$scratch/results-$stamp.json" \
  ${KILN_WORKLOADS:+--workloads-dir "$KILN_WORKLOADS"} -v "$@"

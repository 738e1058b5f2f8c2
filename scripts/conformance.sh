#!/usr/bin/env bash
# Runs the shared conformance suite (BuildKit's results for Dockerfile build cases)
# with kiln and fails when a case listed in tests/conformance/passing.txt fails:
# what passes stays passing. Cases that pass but are not listed yet are printed, to be
# added to the list.
#   scripts/conformance.sh [KILN_BINARY]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${KILN_SHARED_DIR:-$here/../shared}
kiln=$(realpath "${1:-$here/target/debug/kiln}")
list=$here/tests/conformance/passing.txt
if [ ! -x "$shared/conformance/check.sh" ]; then
  echo "conformance: the shared suite was not found at $shared/conformance; skipped" >&2
  exit 0
fi
root=$(mktemp -d "${TMPDIR:-/tmp}/kiln-conformance.XXXXXX")
trap 'rm -rf "$root"' EXIT
out=$root/check.log
"$shared/conformance/check.sh" "$kiln --root $root/state build" >"$out" 2>&1
status=$?
tail -n 1 "$out"
failed=$(grep -oE '^FAIL [^: ]+' "$out" | awk '{print $2}' | sort -u)
regressions=()
while IFS= read -r case; do
  [ -z "$case" ] && continue
  case "$case" in \#*) continue ;; esac
  if [ ! -d "$shared/conformance/cases/$case" ]; then
    echo "conformance: listed case $case is not in the suite" >&2
    regressions+=("$case")
  elif grep -qx "$case" <<<"$failed"; then
    regressions+=("$case")
  fi
done < "$list"
new=()
for d in "$shared"/conformance/cases/*/; do
  c=$(basename "$d")
  grep -qx "$c" <<<"$failed" && continue
  grep -qx "$c" "$list" || new+=("$c")
done
if [ ${#new[@]} -gt 0 ]; then
  echo "conformance: passing but not yet listed in tests/conformance/passing.txt: ${new[*]}"
fi
if [ ${#regressions[@]} -gt 0 ]; then
  echo "conformance: REGRESSIONS (listed as passing, now failing): ${regressions[*]}" >&2
  grep -A22 -E "^FAIL ($(IFS='|'; echo "${regressions[*]}"))[: ]" "$out" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "conformance: some cases fail that were never listed as passing:" >&2
  grep '^FAIL' "$out" >&2
fi
exit 0

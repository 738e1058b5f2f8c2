#!/usr/bin/env bash
# Runs the conformance cases (BuildKit's results for Dockerfile build cases) with kiln
# and fails when a case listed as passing fails: what passes stays passing. Two suites:
#   - the shared suite ($KILN_SHARED_DIR/conformance/cases), listed in
#     tests/conformance/passing.txt;
#   - the project's own cases (tests/conformance/cases, recorded with BuildKit the same
#     way), listed in tests/conformance/passing-project.txt.
# Cases that pass but are not listed yet are printed, to be added to their list.
#   scripts/conformance.sh [KILN_BINARY]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${KILN_SHARED_DIR:-$here/../shared}
kiln=$(realpath "${1:-$here/target/debug/kiln}")
check=$shared/conformance/check.sh
if [ ! -x "$check" ]; then
  echo "conformance: the shared suite was not found at $shared/conformance; skipped" >&2
  exit 0
fi
root=$(mktemp -d "${TMPDIR:-/tmp}/kiln-conformance.XXXXXX")
trap 'rm -rf "$root"' EXIT
failed_suites=0

# run_suite NAME CASES_DIR LIST: runs one suite and checks it against its list.
run_suite() {
  local name=$1 cases=$2 list=$3 out=$root/$1.log status failed case c
  "$check" --cases "$cases" "$kiln --root $root/state build" >"$out" 2>&1
  status=$?
  echo "conformance ($name): $(tail -n 1 "$out")"
  failed=$(grep -oE '^FAIL [^: ]+' "$out" | awk '{print $2}' | sort -u)
  local regressions=() new=()
  while IFS= read -r case; do
    [ -z "$case" ] && continue
    case "$case" in \#*) continue ;; esac
    if [ ! -d "$cases/$case" ]; then
      echo "conformance ($name): listed case $case is not in the suite" >&2
      regressions+=("$case")
    elif grep -qx "$case" <<<"$failed"; then
      regressions+=("$case")
    fi
  done < "$list"
  for c in "$cases"/*/; do
    c=$(basename "$c")
    grep -qx "$c" <<<"$failed" && continue
    grep -qx "$c" "$list" || new+=("$c")
  done
  if [ ${#new[@]} -gt 0 ]; then
    echo "conformance ($name): passing but not yet listed in ${list#"$here"/}: ${new[*]}"
  fi
  if [ ${#regressions[@]} -gt 0 ]; then
    echo "conformance ($name): REGRESSIONS (listed as passing, now failing): ${regressions[*]}" >&2
    grep -A22 -E "^FAIL ($(IFS='|'; echo "${regressions[*]}"))[: ]" "$out" >&2
    failed_suites=$((failed_suites + 1))
  elif [ "$status" -ne 0 ]; then
    echo "conformance ($name): some cases fail that were never listed as passing:" >&2
    grep '^FAIL' "$out" >&2
  fi
}

run_suite shared "$shared/conformance/cases" "$here/tests/conformance/passing.txt"
run_suite project "$here/tests/conformance/cases" "$here/tests/conformance/passing-project.txt"
[ "$failed_suites" -eq 0 ]

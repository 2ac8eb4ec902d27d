#!/bin/bash
# Usage: memtide_module_test.sh PRELOAD MEMTIDE_CLI PYTHON_DIR
# python/memtide.py end to end: a no-op without the preload, right numbers under LD_PRELOAD, and its marks
# in the `memtide run --report` JSON with the right labels in the right order.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"

[[ $# == 3 ]] || die "usage: $0 PRELOAD MEMTIDE_CLI PYTHON_DIR"
preload=$(realpath -e "$1" 2> /dev/null) || die "preload not found: $1"
cli=$(realpath -e "$2" 2> /dev/null) || die "memtide CLI not found: $2"
python_dir=$(realpath -e "$3" 2> /dev/null) || die "not found: $3"
require_program python3 python3
make_scratch
check=(/usr/bin/python3 -I "$here/memtide_module_check.py" "$python_dir")
failed=0

run_mode() {  # run_mode MODE EXPECTED_OUTPUT COMMAND...
  local mode=$1 expected=$2
  shift 2
  run_workload "$mode" "$preload" "$@"
  if [[ $(cat "$SCRATCH/$mode.rc") != 0 ]] || ! grep -qx "$expected" "$SCRATCH/$mode.out"; then
    echo "FAIL: $mode run (exit $(cat "$SCRATCH/$mode.rc")):" >&2
    cat "$SCRATCH/$mode.out" "$SCRATCH/$mode.err" >&2
    failed=1
  fi
}

run_mode plain "memtide module absent ok" "${check[@]}" absent
run_mode preload "memtide module active ok" "${check[@]}" active
if [[ -s $SCRATCH/preload.err ]]; then
  echo "FAIL: stderr under LD_PRELOAD is not empty:" >&2
  cat "$SCRATCH/preload.err" >&2
  failed=1
fi
run_mode memtide "memtide module active ok" \
  "$cli" run --quiet --report "$SCRATCH/report.json" -- "${check[@]}" active

/usr/bin/python3 -I - "$SCRATCH/report.json" <<'PY' || failed=1
import json, sys

try:
    with open(sys.argv[1]) as f:
        report = json.load(f)
except (OSError, ValueError) as e:
    sys.exit("FAIL: report is not valid JSON: %s" % e)
marks = report.get("marks", [])
labels = [m.get("label") for m in marks]
expected = ["start", "after_alloc", "after_free", "after_reset_peak",
            "a_label_longer_than_forty_seven_bytes_which_gets_truncated".encode()[:47].decode(), "na\u00efve"]
problems = []
if labels != expected:
    problems.append("mark labels %r, expected %r" % (labels, expected))
if report.get("marks_total") != len(expected):
    problems.append("marks_total %r, expected %d" % (report.get("marks_total"), len(expected)))
if labels == expected:
    by = {m["label"]: m for m in marks}
    times = [m["time_s"] for m in marks]
    if times != sorted(times):
        problems.append("mark times go backwards: %r" % times)
    rise = by["after_alloc"]["current_bytes"] - by["start"]["current_bytes"]
    if not 50_000_000 <= rise <= 50_000_000 + (2 << 20):
        problems.append("current_bytes rose by %d between the start and after_alloc marks" % rise)
    if by["after_free"]["peak_bytes"] < by["after_alloc"]["current_bytes"]:
        problems.append("after_free's peak_bytes is below after_alloc's current_bytes")
    r = by["after_reset_peak"]
    if r["peak_bytes"] >= by["after_alloc"]["current_bytes"]:
        problems.append("after_reset_peak's peak_bytes %d still holds the freed block" % r["peak_bytes"])
    if r["peak_bytes"] < r["current_bytes"]:
        problems.append("a mark with peak_bytes < current_bytes: %r" % r)
for p in problems:
    print("FAIL: report:", p, file=sys.stderr)
if problems:
    print(json.dumps(marks, indent=1)[:3000], file=sys.stderr)
    sys.exit(1)
print("report marks ok:", labels)
PY
((failed == 0)) || exit 1

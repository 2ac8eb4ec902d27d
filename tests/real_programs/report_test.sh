#!/bin/bash
# Usage: report_test.sh PRELOAD MEMTIDE_CLI
# Runs the Python workload plain and under `memtide run --report FILE`: the program's stdout and exit code
# must be the same, memtide's summary on stderr must keep to its format ("memtide: " or two spaces), and
# the report must be valid JSON whose heap numbers are plausible. Exact numbers are other tests' business.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"

[[ $# == 2 ]] || die "usage: $0 PRELOAD MEMTIDE_CLI"
preload=$(realpath -e "$1" 2> /dev/null) || die "preload not found: $1"
cli=$(realpath -e "$2" 2> /dev/null) || die "memtide CLI not found: $2"
[[ -x $cli ]] || die "memtide CLI not found: $cli"
require_program python3 python3
make_scratch

workload=(/usr/bin/python3 -I "$here/python_workload.py")
run_workload plain "$preload" "${workload[@]}"
[[ $(cat "$SCRATCH/plain.rc") == 0 ]] || die "the workload fails without memtide"
run_workload memtide "$preload" "$cli" run --report "$SCRATCH/report.json" -- "${workload[@]}"

failed=0
if ! cmp -s "$SCRATCH/plain.out" "$SCRATCH/memtide.out"; then
  echo "FAIL: stdout under memtide run differs from the plain run" >&2
  diff -u --label plain.out --label memtide.out "$SCRATCH/plain.out" "$SCRATCH/memtide.out" | head -n 40 >&2
  failed=1
fi
if [[ $(cat "$SCRATCH/memtide.rc") != 0 ]]; then
  echo "FAIL: memtide run exited $(cat "$SCRATCH/memtide.rc"), the program exits 0" >&2
  failed=1
fi
# The workload writes nothing on stderr, so all of it is memtide's summary.
if grep -v -e '^memtide: ' -e '^  ' "$SCRATCH/memtide.err" > "$SCRATCH/stray.err"; then
  echo "FAIL: stderr lines that are neither the program's nor memtide's summary format:" >&2
  head -n 20 "$SCRATCH/stray.err" >&2
  failed=1
fi
[[ -s $SCRATCH/memtide.err ]] || { echo "FAIL: memtide run printed no summary" >&2; failed=1; }

/usr/bin/python3 -I - "$SCRATCH/report.json" <<'PY' || failed=1
import json, sys

path = sys.argv[1]
try:
    with open(path) as f:
        report = json.load(f)
except (OSError, ValueError) as e:
    sys.exit("FAIL: report %s is not valid JSON: %s" % (path, e))
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)
heap = report.get("heap", {})
check(report.get("memtide_report_version") == 2, "memtide_report_version is 2")
check(report.get("status") == "exited", 'status is "exited"')
check(report.get("exit_code") == 0 and report.get("signal") is None, "exit_code 0, signal null")
check(isinstance(report.get("command"), list) and report["command"][:1] == ["/usr/bin/python3"],
      "command starts with /usr/bin/python3")
check(isinstance(report.get("pid"), int) and report["pid"] > 0, "pid > 0")
numbers = ("current_bytes", "peak_bytes", "allocations", "frees", "allocated_bytes_total")
check(all(isinstance(heap.get(k), int) for k in numbers), "heap has integer " + ", ".join(numbers))
if not problems:
    check(heap["peak_bytes"] >= heap["current_bytes"] > 0, "heap.peak_bytes >= heap.current_bytes > 0")
    check(heap["allocations"] > 0, "heap.allocations > 0")
    check(heap["allocations"] >= heap["frees"], "heap.allocations >= heap.frees")
    check(heap["allocated_bytes_total"] >= heap["peak_bytes"], "heap.allocated_bytes_total >= peak")
    # The workload holds a 64 MiB bytearray at one point.
    check(heap["peak_bytes"] >= 64 << 20, "heap.peak_bytes >= 64 MiB")
for p in problems:
    print("FAIL: report: expected", p, file=sys.stderr)
if problems:
    print(json.dumps(report, indent=1)[:3000], file=sys.stderr)
    sys.exit(1)
print("report ok: heap current %d, peak %d, allocations %d" %
      (heap["current_bytes"], heap["peak_bytes"], heap["allocations"]))
PY
((failed == 0)) || exit 1

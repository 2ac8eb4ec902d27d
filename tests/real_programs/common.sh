# shellcheck shell=bash
# Shared by the real-program tests (sourced, not run): run one workload plain and under the preload,
# in the same directory and environment, and require byte-identical stdout, stderr and exit code.
#
# Most workloads are bash scripts that run under the preload themselves, so bash and every program they
# start (sqlite3, git and its helpers, g++ with cc1plus/as/ld) are traced, not only the first one.

set -euo pipefail

# Debian's programs, whatever the caller's PATH holds (pyenv shims, /usr/local builds).
readonly CLEAN_PATH=/usr/sbin:/usr/bin:/sbin:/bin

die() {
  echo "FAIL: $*" >&2
  exit 1
}

# require_program NAME DEBIAN_PACKAGE: a missing program is a failed test, not a skipped one: these tests
# are the evidence that real programs run unchanged, and scripts/setup installs what they need.
require_program() {
  PATH=$CLEAN_PATH command -v "$1" > /dev/null ||
    die "$1 not found: install the Debian package $2 (scripts/setup does)"
}

# make_scratch: a private directory removed at exit, in $SCRATCH.
make_scratch() {
  SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/memtide-real.XXXXXX")
  trap 'rm -rf "$SCRATCH"' EXIT
}

# set_clean_env: CLEAN_ENV, the fixed environment both runs get (an `env -i` command line). Nothing from
# the caller leaks in (no LD_PRELOAD, no MEMTIDE_*, no PYTHON*, no GIT_*), so the only difference between
# the runs is the preload. Segments go to a private MEMTIDE_DIR so the test can check none is left behind.
set_clean_env() {
  CLEAN_ENV=(env -i PATH="$CLEAN_PATH" HOME="$SCRATCH/home" LANG=C.UTF-8 LC_ALL=C.UTF-8 TZ=UTC
    TMPDIR="$SCRATCH/tmp" MEMTIDE_DIR="$SCRATCH/segments")
}

# run_workload MODE PRELOAD COMMAND...: runs COMMAND in $SCRATCH/work (the same path for both modes, so
# paths in the output match) and leaves $SCRATCH/MODE.{out,err,rc}.
run_workload() {
  local mode=$1 preload=$2
  shift 2
  rm -rf "${SCRATCH:?}/work" "${SCRATCH:?}/home" "${SCRATCH:?}/tmp" "${SCRATCH:?}/segments" "${SCRATCH:?}/traces"
  mkdir -p "$SCRATCH/work" "$SCRATCH/home" "$SCRATCH/tmp" "$SCRATCH/segments"
  set_clean_env
  local -a env_cmd=("${CLEAN_ENV[@]}")
  if [[ $mode == preload ]]; then
    env_cmd+=(LD_PRELOAD="$preload")
    # Tracing (TRACE_MODE=sample|full): every process keeps its stacks and writes its trace at exit; the
    # leak text stays off, since it goes to standard error, which must match the plain run's.
    if [[ -n ${TRACE_MODE:-} ]]; then
      mkdir -p "$SCRATCH/traces"
      env_cmd+=(MEMTIDE_TRACE="$TRACE_MODE" MEMTIDE_LEAK_TOP=0 MEMTIDE_TRACE_FILE="$SCRATCH/traces/trace.%p.json")
    fi
  fi
  local rc=0
  (cd "$SCRATCH/work" && "${env_cmd[@]}" "$@") > "$SCRATCH/$mode.out" 2> "$SCRATCH/$mode.err" || rc=$?
  echo "$rc" > "$SCRATCH/$mode.rc"
}

# show_diff WHAT: prints the first differences between the plain and preloaded WHAT (out, err, rc).
show_diff() {
  diff -u --label "plain.$1" --label "preload.$1" "$SCRATCH/plain.$1" "$SCRATCH/preload.$1" | head -n 60 >&2
}

# compare_plain_and_preload PRELOAD COMMAND...: the whole test: both runs, then the comparison.
compare_plain_and_preload() {
  local preload=$1
  shift
  [[ -f $preload ]] || die "preload not found: $preload"
  # Proves the preload loads at all: a program reading its own mappings under it sees libmemtide.
  env -i LD_PRELOAD="$preload" /bin/grep -q "$(basename "$preload")" /proc/self/maps ||
    die "$preload is not mapped into a program run with LD_PRELOAD"

  run_workload plain "$preload" "$@"
  run_workload preload "$preload" "$@"

  local failed=0
  if [[ $(cat "$SCRATCH/plain.rc") != 0 ]]; then
    echo "FAIL: the workload fails even without the preload (exit $(cat "$SCRATCH/plain.rc")):" >&2
    head -n 40 "$SCRATCH/plain.err" >&2
    exit 1
  fi
  for what in rc out err; do
    if ! cmp -s "$SCRATCH/plain.$what" "$SCRATCH/preload.$what"; then
      echo "FAIL: $what differs between the plain run and the run under LD_PRELOAD=$preload" >&2
      show_diff "$what"
      failed=1
    fi
  done
  # Every process exited normally, so each one's segment (if it lived long enough to have one) must be
  # gone: the default is MEMTIDE_KEEP_SEGMENT=0.
  local left
  left=$(ls -A "$SCRATCH/segments")
  if [[ -n $left ]]; then
    echo "FAIL: segment files left behind in MEMTIDE_DIR after every process exited normally:" >&2
    echo "$left" | head -n 20 >&2
    failed=1
  fi
  if [[ -n ${TRACE_MODE:-} ]]; then
    # One complete exit trace per traced process that ended normally, each a readable document.
    /usr/bin/python3 -I -c '
import glob, json, sys
files = glob.glob(sys.argv[1] + "/trace.*.json")
if not files:
    sys.exit("no trace file was written")
for path in files:
    with open(path) as f:
        trace = json.load(f)
    kind, complete, sites = trace.get("kind"), trace.get("complete"), trace.get("sites") or []
    if kind != "exit" or complete is not True or (sys.argv[2] == "full" and not sites):
        sys.exit(f"{path}: kind {kind}, complete {complete}, {len(sites)} sites")
print(f"{len(files)} trace files, every one complete")
' "$SCRATCH/traces" "$TRACE_MODE" >&2 || failed=1
  fi
  ((failed == 0)) || exit 1
  echo "identical: exit code $(cat "$SCRATCH/plain.rc"), $(wc -c < "$SCRATCH/plain.out") bytes of stdout," \
    "$(wc -c < "$SCRATCH/plain.err") bytes of stderr"
}

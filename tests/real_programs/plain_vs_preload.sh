#!/bin/bash
# Usage: [TRACE_MODE=sample|full] plain_vs_preload.sh PRELOAD PROGRAM   (PROGRAM: python3 | sqlite3 | git | g++)
# Runs PROGRAM's workload plain and under LD_PRELOAD=PRELOAD and fails unless stdout, stderr and the exit
# code are byte-identical (see common.sh). With TRACE_MODE the preloaded run also traces, and every process's
# trace file must be complete. ctest runs it once per program, and traced for some.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"

[[ $# == 2 ]] || die "usage: $0 PRELOAD python3|sqlite3|git|g++"
preload=$(realpath -e "$1" 2> /dev/null) || die "preload not found: $1"
make_scratch
case $2 in
  python3)
    require_program python3 python3
    # -I: no user site, no PYTHON* variables, no script directory on sys.path.
    compare_plain_and_preload "$preload" /usr/bin/python3 -I "$here/python_workload.py"
    ;;
  sqlite3)
    require_program sqlite3 sqlite3
    compare_plain_and_preload "$preload" bash "$here/sqlite3_workload.sh"
    ;;
  git)
    require_program git git
    compare_plain_and_preload "$preload" bash "$here/git_workload.sh"
    ;;
  g++)
    require_program g++ g++
    compare_plain_and_preload "$preload" bash "$here/gxx_workload.sh"
    ;;
  *) die "unknown program $2" ;;
esac

#!/usr/bin/env python3
"""The trace-file commands of the memtide CLI (report, diff, check, snapshot, and run's new flags) against
hand-made trace files and reports, one ctest per case (report.cli_<case>).

Usage: report_cli_test.py CASE --cli MEMTIDE

The traces name modules that do not exist, so every frame is module+offset and nothing depends on this
machine's binaries: symbolization itself is unit.symbolizer_test's business. Errors must be one line
"memtide: error: ..." with exit status 1 (2 for a bad flag), budgets exit 3.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ARGS = None


class Failure(Exception):
    pass


def check(condition, what, detail=""):
    if not condition:
        raise Failure(what + (("\n" + detail) if detail else ""))


def memtide(*arguments, expect=0):
    done = subprocess.run([ARGS.cli, *arguments], capture_output=True, text=True, timeout=30)
    shown = f"$ memtide {' '.join(arguments)}\nexit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    check(done.returncode == expect, f"exit status {done.returncode}, expected {expect}", shown)
    return done


def one_error_line(done, fragment):
    lines = done.stderr.splitlines()
    check(len(lines) == 1 and lines[0].startswith("memtide: error: "), "not one 'memtide: error:' line", done.stderr)
    check(fragment in lines[0], f"the error does not say {fragment!r}", done.stderr)


def trace(kind="exit", scale=1):
    return {
        "memtide_trace_version": 1, "kind": kind, "pid": 4242, "command": ["./leaky", "--items", "10"],
        "time_s": 0.5, "exit_code": 0 if kind == "exit" else None, "mode": "full", "sample_mean_bytes": 0,
        "byte_unit": "requested", "complete": True,
        "totals": {"live_bytes": 1000 * scale + 1048, "live_blocks": 10 * scale + 2, "peak_bytes": 4002000,
                   "allocations": 60, "frees": 48, "allocated_bytes": 4100000},
        "modules": [{"path": "/nonexistent/bin/leaky", "build_id": "1234abcd", "base": 0, "start": 0, "end": 0},
                    {"path": "/nonexistent/lib/libc.so.6", "build_id": "", "base": 0, "start": 0, "end": 0},
                    {"path": "/nonexistent/lib/libthird.so", "build_id": "", "base": 0, "start": 0, "end": 0}],
        "stacks": [{"id": 1, "frames": [[0, 0x11a5], [0, 0x1240], [1, 0x271ca]]},
                   {"id": 2, "frames": [[1, 0x7581d], [1, 0x79f0a]]},
                   {"id": 3, "frames": [[2, 0x900], [0, 0x1240]]},
                   {"id": 4, "frames": [[0, 0x1500], [0, 0x1240]]}],
        "sites": [{"stack": 1, "live_bytes": 1000 * scale, "live_blocks": 10 * scale, "peak_bytes": 1000,
                   "peak_blocks": 10, "allocated_bytes": 5000, "allocations": 50, "sizes": [100]},
                  {"stack": 2, "live_bytes": 1024, "live_blocks": 1, "peak_bytes": 1024, "peak_blocks": 1,
                   "allocated_bytes": 1024, "allocations": 1, "sizes": [1024]},
                  {"stack": 3, "live_bytes": 24, "live_blocks": 1, "peak_bytes": 24, "peak_blocks": 1,
                   "allocated_bytes": 24, "allocations": 1, "sizes": [24]},
                  {"stack": 4, "live_bytes": 0, "live_blocks": 0, "peak_bytes": 4000000, "peak_blocks": 1,
                   "allocated_bytes": 4000000, "allocations": 1, "sizes": [4000000]}],
    }


def write(directory, name, document):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(document if isinstance(document, str) else json.dumps(document))
    return path


def case_report(scratch):
    exit_trace = write(scratch, "exit.json", trace())
    text = memtide("report", exit_trace).stdout
    check(text.startswith("memtide leak report of ./leaky --items 10 (pid 4242): full trace, exit code 0\n"),
          "header", text)
    for expected in ("Leak of 1,000 bytes in 10 blocks (sizes 100)\n    #0 ?? (leaky+0x11a5)\n",
                     "Leak of 24 bytes in 1 block (sizes 24)\n    #0 ?? (libthird.so+0x900)\n",
                     "SUMMARY: 1,024 bytes leaked in 11 blocks from 2 stacks.\n",
                     "Not counted: 1,024 bytes in 1 block the C runtime frees at exit",
                     "At the peak (3.8 MiB traced):\nHeld 4,000,000 bytes in 1 block, 100.0%\n"):
        check(expected in text, f"report text lacks {expected!r}", text)
    check("...and 1 more stack: 24 bytes in 1 block" in memtide("report", exit_trace, "--top", "1").stdout,
          "--top 1 cuts")

    suppressions = write(scratch, "supp.txt", "# vendor\nleak:libthird\n")
    text = memtide("report", exit_trace, "--suppressions", suppressions).stdout
    check("SUMMARY: 1,000 bytes leaked in 10 blocks from 1 stack." in text, "suppressed leak still counted", text)
    check("      1         24 libthird" in text, "suppressions used table", text)

    document = json.loads(memtide("report", exit_trace, "--format", "json").stdout)
    check(document["memtide_report_version"] == 2, "json version")
    check(document["leaked_bytes"] == 1024 and document["leaked_blocks"] == 11, "json leaked totals")
    check(document["leaks"][0]["stack"][0] == {"function": "??", "file": "", "line": 0, "module": "leaky",
                                               "address": "0x11a5"}, "json frame", json.dumps(document["leaks"][0]))
    check(document["runtime_leaks"][0]["bytes"] == 1024, "json runtime leaks")
    check(document["trace"]["peak_bytes"] == 4002000 and document["trace"]["kind"] == "exit", "json trace object")
    check(document["peak_sites"][0]["bytes"] == 4000000, "json peak sites")
    # The JSON is a report that report, diff and check read back.
    report = write(scratch, "report.json", json.dumps(document))
    check("SUMMARY: 1,024 bytes leaked in 11 blocks from 2 stacks." in memtide("report", report).stdout,
          "a report read back")

    folded = memtide("report", exit_trace, "--format", "collapsed").stdout
    check(folded == "leaky+0x1240;libthird.so+0x900 24\nlibc.so.6+0x271ca;leaky+0x1240;leaky+0x11a5 1000\n",
          "collapsed leaks", folded)
    peak = memtide("report", exit_trace, "--format", "collapsed", "--weight", "peak").stdout
    check("leaky+0x1240;leaky+0x1500 4000000\n" in peak, "collapsed --weight peak", peak)

    snapshot = write(scratch, "snapshot.json", trace("snapshot"))
    text = memtide("report", snapshot).stdout
    check(text.startswith("memtide snapshot of ./leaky --items 10 (pid 4242) at 0.50 s: full trace\n"), "snapshot", text)
    check("TOTAL: 2,048 bytes live in 12 blocks from 3 stacks." in text, "snapshot total", text)
    check(json.loads(memtide("report", snapshot, "--format", "json").stdout)["sites"][0]["bytes"] == 1024,
          "snapshot json sites")


def case_errors(scratch):
    one_error_line(memtide("report", os.path.join(scratch, "none.json"), expect=1), "none.json: no such file")
    corrupt = write(scratch, "corrupt.json", '{"memtide_trace_version": 1, "kind": "exi')
    one_error_line(memtide("report", corrupt, expect=1), "corrupt.json: not JSON: parse error at line 1")
    future = trace()
    future["memtide_trace_version"] = 9
    one_error_line(memtide("report", write(scratch, "future.json", future), expect=1),
                   "future.json: trace file version 9 is not supported (this memtide reads versions 1 to 2)")
    one_error_line(memtide("report", write(scratch, "other.json", {"hello": 1}), expect=1), "no version found")
    hostile = trace()
    hostile["stacks"][1]["frames"][0][0] = 77
    one_error_line(memtide("report", write(scratch, "hostile.json", hostile), expect=1),
                   "stacks[1].frames[0]: module index 77 is out of range (the file lists 3 modules)")
    negative = trace()
    negative["sites"][0]["live_bytes"] = -1
    one_error_line(memtide("report", write(scratch, "negative.json", negative), expect=1),
                   "sites[0].live_bytes: -1 is negative")
    one_error_line(memtide("report", write(scratch, "v1.json", {"memtide_report_version": 1, "heap": {}}), expect=1),
                   "has no trace: the run was not traced")
    bad_supp = write(scratch, "bad_supp.txt", "leak:ok\nrace:foo\n")
    one_error_line(memtide("report", write(scratch, "t.json", trace()), "--suppressions", bad_supp, expect=1),
                   "bad_supp.txt:2: 'race:foo' is not a suppression")
    memtide("report", corrupt, "--format", "html", expect=2)
    memtide("report", corrupt, "--top", "-1", expect=2)
    memtide("diff", corrupt, expect=2)


def case_diff(scratch):
    a = write(scratch, "a.json", trace(scale=1))
    b = write(scratch, "b.json", trace(scale=3))
    text = memtide("diff", a, b).stdout
    check(text.startswith(f"memtide diff: {a} (exit) -> {b} (exit), leaked: 1,024 bytes in 11 blocks -> "
                          "3,024 bytes in 31 blocks (+2,000 bytes, +20 blocks)\n"), "diff header", text)
    check("+2,000 bytes (+20 blocks): now 3,000 bytes in 30 blocks\n    #0 ?? (leaky+0x11a5)" in text, "diff entry", text)
    check("...1 unchanged stack" in text, "unchanged counted", text)
    document = json.loads(memtide("diff", a, b, "--json").stdout)
    check(document["size_diff"] == 2000 and document["count_diff"] == 20, "diff json totals", json.dumps(document))
    check(document["stacks"][0]["size"] == 3000 and document["stacks"][0]["size_diff"] == 2000, "diff json stack")
    peak = json.loads(memtide("diff", a, b, "--json", "--peak").stdout)
    check(peak["metric"] == "peak" and peak["size_diff"] == 0, "diff --peak")
    sa = write(scratch, "sa.json", trace("snapshot", 1))
    sb = write(scratch, "sb.json", trace("snapshot", 2))
    check("live: 2,048 bytes in 12 blocks -> 3,048 bytes in 22 blocks" in memtide("diff", sa, sb).stdout,
          "snapshots compare live sites")
    # Reports (memtide report --format json) compare like their traces.
    ra = write(scratch, "ra.json", memtide("report", a, "--format", "json").stdout)
    rb = write(scratch, "rb.json", memtide("report", b, "--format", "json").stdout)
    check(json.loads(memtide("diff", ra, rb, "--json").stdout)["size_diff"] == 2000, "reports diff")
    one_error_line(memtide("diff", write(scratch, "v1.json", {"memtide_report_version": 1}), b, expect=1),
                   "v1.json has no trace")


def run_report(heap_peak, leaked=None):
    report = {"memtide_report_version": 1, "command": ["./leaky"], "pid": 7, "exit_code": 0, "signal": None,
              "duration_s": 1.0, "status": "exited", "heap": {"peak_bytes": heap_peak, "current_bytes": 10},
              "rss": {"peak_bytes": 8 << 20, "final_bytes": 7 << 20}, "gpu": []}
    return report


def case_check(scratch):
    v1 = write(scratch, "v1.json", run_report(5000))
    memtide("check", v1, "--max-peak", "6000")
    done = memtide("check", v1, "--max-peak", "4000", expect=3)
    check(done.stderr.splitlines() == ["memtide: heap peak 4.9 KiB (5000 bytes) exceeds --max-peak 3.9 KiB (4000 bytes)"],
          "max-peak violation line", done.stderr)
    done = memtide("check", v1, "--max-leak", "1", expect=3)
    check(done.stderr.splitlines() == ["memtide: --max-leak cannot be checked: the report has no leak check "
                                       "(memtide run --leaks)"], "max-leak without data", done.stderr)
    exit_trace = write(scratch, "exit.json", trace())
    memtide("check", exit_trace, "--max-leak", "1024")
    done = memtide("check", exit_trace, "--max-leak", "1000", expect=3)
    check("leaked 1.0 KiB (1024 bytes) in 11 blocks exceeds --max-leak 1000 B (1000 bytes)" in done.stderr,
          "max-leak violation", done.stderr)
    suppressions = write(scratch, "supp.txt", "leak:libthird\n")
    memtide("check", exit_trace, "--max-leak", "1000", "--suppressions", suppressions)
    done = memtide("check", exit_trace, "--max-peak", "1", expect=3)
    check("--max-peak cannot be checked on a trace file, which holds no heap or GPU counters" in done.stderr,
          "a trace has no heap counters", done.stderr)

    # Baselines: 5% by default.
    old = write(scratch, "old.json", run_report(100000))
    memtide("check", write(scratch, "same.json", run_report(105000)), "--baseline", old)
    done = memtide("check", write(scratch, "grown.json", run_report(106000)), "--baseline", old, expect=3)
    check(done.stderr.startswith("memtide: heap peak 103.5 KiB (106000 bytes) exceeds the baseline's 97.7 KiB "
                                 "(100000 bytes) + 5% = 105000 bytes (+6.0%;"), "baseline violation", done.stderr)
    memtide("check", os.path.join(scratch, "grown.json"), "--baseline", old, "--max-increase", "10%")
    summary = os.path.join(scratch, "summary.md")
    memtide("check", os.path.join(scratch, "grown.json"), "--baseline", old, "--summary-md", summary, expect=3)
    with open(summary) as f:
        markdown = f.read()
    check(markdown.startswith("### memtide: `./leaky` — ❌ failed (1 budget exceeded)"), "summary heading", markdown)
    check("| heap peak | 97.7 KiB | 103.5 KiB | +6.0% |" in markdown, "summary baseline table", markdown)

    memtide("check", v1, "--max-increase", "5", expect=2)  # needs --baseline
    memtide("check", v1, "--max-peak", "lots", expect=2)
    memtide("check", v1, "--baseline", old, "--max-increase", "-3", expect=2)
    one_error_line(memtide("check", v1, expect=1), "needs a budget")
    one_error_line(memtide("check", v1, "--max-peak", "1", "--baseline", os.path.join(scratch, "none.json"), expect=1),
                   "none.json: no such file")


def case_snapshot_errors(scratch):
    # No segment for this pid in an empty folder: one line.
    done = memtide("snapshot", str(os.getpid()), "--dir", scratch, expect=1)
    check(len(done.stderr.splitlines()) == 1 and done.stderr.startswith("memtide: error: "), "one line", done.stderr)
    memtide("snapshot", "12", "--timeout", "soon", expect=2)
    memtide("snapshot", "0", expect=2)


def case_run_flags(scratch):
    memtide("run", "--leaks", "--trace", "sample", "--", "/bin/true", expect=2)
    memtide("run", "--trace", "partial", "--", "/bin/true", expect=2)
    memtide("run", "--max-increase", "5", "--", "/bin/true", expect=2)
    memtide("run", "--max-leak", "lots", "--", "/bin/true", expect=2)
    done = memtide("run", "--suppressions", os.path.join(scratch, "s.txt"), "--", "/bin/true", expect=1)
    one_error_line(done, "--suppressions needs a leak check")
    done = memtide("run", "--leaks", "--suppressions", os.path.join(scratch, "s.txt"), "--", "/bin/true", expect=1)
    one_error_line(done, "cannot read the suppressions file")
    done = memtide("run", "--baseline", os.path.join(scratch, "old.json"), "--", "/bin/true", expect=1)
    one_error_line(done, "old.json: no such file")


def case_run_unreachable(scratch):
    """A program LD_PRELOAD cannot reach: memtide run says why, and the program's exit status is kept."""
    source = os.path.join(scratch, "static.c")
    with open(source, "w") as out:
        out.write('#include <stdlib.h>\nint main(void) { return malloc(100) != NULL ? 3 : 4; }\n')
    program = os.path.join(scratch, "static")
    subprocess.run(["gcc", "-static", "-o", program, source], check=True)
    report = os.path.join(scratch, "report.json")
    done = memtide("run", "--report", report, "--", program, expect=3)
    check(f"no memtide data: {program} is statically linked: no dynamic loader runs for it" in done.stderr,
          "static executable named", done.stderr)
    with open(report) as file:
        check("statically linked" in json.load(file)["error"], "the report says it too")
    if os.geteuid() != 0:
        return  # the set-user-ID copy needs root to give it another owner
    setuid = os.path.join(scratch, "setuid_true")
    subprocess.run(["cp", "/bin/true", setuid], check=True)
    os.chown(setuid, 65534, -1)
    os.chmod(setuid, 0o4755)
    os.chmod(scratch, 0o755)
    done = memtide("run", "--", setuid)
    check(f"no memtide data: {setuid} is set-user-ID or set-group-ID: the loader ignores LD_PRELOAD" in done.stderr,
          "set-user-ID executable named", done.stderr)


CASES = {name[len("case_"):]: function for name, function in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--cli", required=True)
    ARGS = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memtide-report-cli.") as scratch:
        try:
            CASES[ARGS.case](scratch)
        except Failure as failure:
            print(f"FAIL {ARGS.case}: {failure}", file=sys.stderr)
            return 1
    print(f"ok {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

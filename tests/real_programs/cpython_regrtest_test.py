"""CPython's own regression tests, plain and under the preload: the per-test results must be the same.

Usage: /usr/bin/python3 -I cpython_regrtest_test.py PRELOAD [REGRTEST_ARGUMENT...]
(test modules, and regrtest's own options such as -m PATTERN). With MEMTIDE_TRACE set (sample or full), the
preload run traces at that mode, with the leak text at exit off (it would change what tests read from stderr).

Runs `python3 -m test --junit-xml` over a subset that leans on what an allocator interposer can break
(threads, fork, subprocess, signals, mmap, os) once without and once with LD_PRELOAD=PRELOAD, in the same
clean environment, and compares the outcome (passed, skipped, failed, error) of every test case. A case
whose outcome differs is run again on its own, in both modes, to tell a preload bug (the difference comes
back) from a timing flake (it does not). Needs Debian's libpython3.11-testsuite. Takes minutes: ctest
labels it "slow".

A test that fails in both modes is not memtide's concern (test_threading's
test_import_from_another_thread fails on some machines even without the preload): only differences count.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

PYTHON = "/usr/bin/python3"
DEFAULT_MODULES = ["test_threading", "test_subprocess", "test_fork1", "test_signal", "test_mmap", "test_os"]
# regrtest's own watchdog, per test module: a module hung in a deadlock (fork with a lock held, a process
# that never exits) dumps its tracebacks and fails instead of running into ctest's TIMEOUT with nothing
# to show. The slowest module here takes about 50 s.
PER_MODULE_TIMEOUT_S = 240
RERUNS = 2  # times a differing case is rerun in each mode
MAX_RERUNS = 10  # more differing cases than this are reported without reruns


def clean_env(scratch, preload):
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": os.path.join(scratch, "home"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": os.path.join(scratch, "tmp"),
        "MEMTIDE_DIR": os.path.join(scratch, "segments"),
    }
    if preload:
        env["LD_PRELOAD"] = preload
        if os.environ.get("MEMTIDE_TRACE"):
            env["MEMTIDE_TRACE"] = os.environ["MEMTIDE_TRACE"]
            env["MEMTIDE_LEAK_TOP"] = "0"
    for key in ("HOME", "TMPDIR", "MEMTIDE_DIR"):
        os.makedirs(env[key], exist_ok=True)
    # Like /dev/shm: test_subprocess runs children as other users, which must be able to create their
    # segments too (or memtide says on their stderr that it cannot, and tests that read stderr differ).
    os.chmod(env["MEMTIDE_DIR"], 0o1777)
    return env


def outcomes(junit_path):
    """{test id: 'passed' | 'skipped' | 'failed' | 'error'} from regrtest's --junit-xml file."""
    result = {}
    for case in ET.parse(junit_path).iter("testcase"):
        kinds = {child.tag for child in case}
        if "error" in kinds:
            outcome = "error"
        elif "failure" in kinds:
            outcome = "failed"
        elif "skipped" in kinds:
            outcome = "skipped"
        else:
            outcome = "passed"
        result[case.get("name")] = outcome
    return result


def regrtest(scratch, mode, preload, args, tag):
    """Runs `python3 -m test ARGS` in MODE ('plain' or 'preload'); returns (outcomes, log path)."""
    workdir = os.path.join(scratch, tag)
    os.makedirs(workdir)
    junit = os.path.join(workdir, "junit.xml")
    log = os.path.join(workdir, "log")
    # -j1: one module at a time, each in a fresh worker process, so a module that crashes or hangs loses
    # its own results only. Sequential all the same: these tests time signals and timers. -v: a worker that
    # dies leaves the names of the cases it ran in the log (once test_subprocess's worker exited with status
    # 1 and no output at all under the preload, in one CI run of several, and nothing said where).
    cmd = [PYTHON, "-m", "test", "-j1", "-v", "--timeout", str(PER_MODULE_TIMEOUT_S), "--junit-xml", junit] + args
    with open(log, "wb") as out:
        subprocess.run(cmd, cwd=workdir, env=clean_env(workdir, preload if mode == "preload" else None),
                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if not os.path.exists(junit):
        with open(log, errors="replace") as f:
            tail = f.read()[-4000:]
        sys.exit("FAIL: %s run of %s wrote no JUnit file; log tail:\n%s" % (mode, " ".join(args), tail))
    return outcomes(junit), log


def module_section(log, module):
    """The part of a `-m test -j1` log about MODULE: from its result line to the next module's."""
    lines = log.splitlines()
    progress = re.compile(r"^\d+:\d\d:\d\d .*\[ *\d+/\d+")
    start = next((i for i, line in enumerate(lines)
                  if progress.match(line) and re.search(r"\] %s\b" % re.escape(module), line)), None)
    if start is None:
        return log[-8000:]
    end = next((i for i in range(start + 1, len(lines)) if progress.match(lines[i])), len(lines))
    return "\n".join(lines[start:end])


def module_of(test_id):
    # "test.test_os.TestScandir.test_bytes" -> "test_os"
    parts = test_id.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "test" else parts[0]


def process_reads_itself():
    """Whether process_vm_readv reads this process's own memory (gVisor answers ENOSYS). Without it a traced
    program keeps libunwind's pipe in its descriptor table (at 1000 and up), and tests that list every
    descriptor differ by design."""
    import ctypes

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)
    source, target = ctypes.c_char(b"x"), ctypes.c_char(b"\0")
    local = IoVec(ctypes.cast(ctypes.byref(target), ctypes.c_void_p), 1)
    remote = IoVec(ctypes.cast(ctypes.byref(source), ctypes.c_void_p), 1)
    libc.process_vm_readv.restype = ctypes.c_ssize_t
    return libc.process_vm_readv(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) == 1


def main():
    if os.environ.get("MEMTIDE_TRACE") and not process_reads_itself():
        print("skipped: process_vm_readv is refused here, so tracing keeps libunwind's pipe among the descriptors")
        return 0
    if len(sys.argv) < 2:
        sys.exit("usage: cpython_regrtest_test.py PRELOAD [REGRTEST_ARGUMENT...]")
    preload = os.path.abspath(sys.argv[1])
    modules = sys.argv[2:] or DEFAULT_MODULES
    if not os.path.isfile(preload):
        sys.exit("FAIL: preload not found: %s" % preload)
    probe = subprocess.run([PYTHON, "-c", "import test.libregrtest, test.test_os"], capture_output=True)
    if probe.returncode != 0:
        sys.exit("FAIL: CPython's test suite is not installed: install the Debian package "
                 "libpython3.11-testsuite (scripts/setup does)")

    scratch = tempfile.mkdtemp(prefix="memtide-regrtest.")
    try:
        started = time.monotonic()
        plain, plain_log = regrtest(scratch, "plain", preload, modules, "plain")
        middle = time.monotonic()
        traced, traced_log = regrtest(scratch, "preload", preload, modules, "preload")
        print("passes: %.0f s plain, %.0f s under the preload"
              % (middle - started, time.monotonic() - middle))

        counts = {}
        for outcome in plain.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        print("plain run: %d test cases: %s" % (len(plain), ", ".join(
            "%d %s" % (n, o) for o, n in sorted(counts.items()))))
        for test_id in sorted(t for t, o in plain.items() if o in ("failed", "error")):
            print("  fails without the preload too (ignored): %s" % test_id)

        differing = sorted(t for t in set(plain) | set(traced) if plain.get(t) != traced.get(t))
        if not differing:
            print("preload run: the same outcome for all %d test cases" % len(plain))
            return 0

        # A case that went missing means a whole module or class died (crash, watchdog): rerunning each
        # case of it cannot tell more than the module's log, so report those from the logs.
        missing = [t for t in differing if t not in traced or t not in plain]
        real, flaky = [], []
        to_rerun = [t for t in differing if t not in missing]
        if len(to_rerun) > MAX_RERUNS:
            # Many differences at once are not timing flakes, and rerunning them would take long.
            real = [(t, plain[t], traced[t]) for t in to_rerun]
            to_rerun = []
        for n, test_id in enumerate(to_rerun):
            seen = set()
            for attempt in range(RERUNS):
                for mode in ("plain", "preload"):
                    got, _ = regrtest(scratch, mode, preload, [module_of(test_id), "-m", test_id],
                                      "rerun-%d-%d-%s" % (n, attempt, mode))
                    seen.add((mode, got.get(test_id, "missing")))
            plain_outcomes = {o for m, o in seen if m == "plain"}
            traced_outcomes = {o for m, o in seen if m == "preload"}
            if plain_outcomes & traced_outcomes:
                flaky.append((test_id, plain[test_id], traced[test_id]))
            else:
                real.append((test_id, plain[test_id], traced[test_id]))

        for test_id, p, t in flaky:
            print("warning: %s: %s plain, %s under the preload, but the same on a rerun: a flake"
                  % (test_id, p, t))
        lost = {}
        for test_id in missing:
            lost.setdefault(module_of(test_id), []).append(test_id)
        for module, ids in sorted(lost.items()):
            where = "under the preload" if ids[0] in plain else "in the plain run"
            total = sum(1 for t in plain if module_of(t) == module)
            print("FAIL: %s: %d of its %d test cases have no result %s: the module crashed or hung "
                  "(its log is below). Reproduce:\n  LD_PRELOAD=%s %s -m test -v %s"
                  % (module, len(ids), total, where, preload, PYTHON, module))
        for test_id, p, t in real:
            print("FAIL: %s: %s plain, %s under the preload. Reproduce:\n"
                  "  LD_PRELOAD=%s %s -m test -v %s -m %s"
                  % (test_id, p, t, preload, PYTHON, module_of(test_id), test_id))
        if missing or real:
            with open(traced_log, errors="replace") as f:
                log = f.read()
            for module in sorted(set(lost) | {module_of(t) for t, _, _ in real}):
                print("--- preload run log, %s:" % module)
                print(module_section(log, module)[-8000:])
            return 1
        return 0
    finally:
        if os.environ.get("MEMTIDE_TEST_KEEP_SCRATCH") != "1":
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

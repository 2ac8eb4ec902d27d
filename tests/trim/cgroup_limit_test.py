"""Trim policy under a real container limit (ctest trim.cgroup_limit): what `docker run --memory=512m` does,
done by hand with a cgroup v1 memory controller, and the seed's goal checked against it: usage under 60%.

As root, creates /sys/fs/cgroup/memory/memtide-test-<pid> with memory.limit_in_bytes = 512 MiB and runs
phased_arenas (live memory under 200 MiB; freed-but-kept memory grows a phase at a time) in it three times,
each child moved into the cgroup before it execs, memory.max_usage_in_bytes reset in between:

  plain              the control: glibc keeps what was freed; must reach >= 78% of the limit (or be OOM-killed)
  memtide            LD_PRELOAD=libmemtide.so, default policy: must stay under 60%; no alert above normal;
                     the segment must show the 512 MiB cgroup limit and the trims that did it
  memtide, TRIM=0    policy off, memtide_trim() called once at the end: reaches the plain run's usage, so
                     the alert level must rise to warning (80..90% in use) and no further, then come back to
                     normal after the requested trim

Alert levels and trims come from the kept segment (MEMTIDE_KEEP_SEGMENT=1), read with `memtide show --json`.
The cgroup is removed afterwards, also on failure. Exit 77 (ctest: skipped) with a loud message where the
cgroup cannot be made: not root, or no cgroup v1 memory controller mounted.

usage: cgroup_limit_test.py PRELOAD CLI WORKLOAD
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
MIB = 1024 * 1024
LIMIT_BYTES = 512 * MIB
CONTROL_AT_LEAST = 0.78   # the seed's container: 78% of its limit in use
TARGET_BELOW = 0.60       # the seed's goal: under 60%
CONTROLLER = "/sys/fs/cgroup/memory"
# Three phases of 142 MiB: a plain run keeps about 3 x 142 MiB (+ the program) = ~84% of 512 MiB, in the
# middle of the warning band (80..90%), so the alert expectations do not depend on a few MiB either way.
WORKLOAD_ARGS = ["--phases", "3", "--phase-mib", "142", "--gap-ms", "2000", "--final-hold-ms", "600"]
RUN_TIMEOUT_S = 60


def skip(reason):
    print("=" * 78)
    print(f"SKIPPED: trim.cgroup_limit: {reason}")
    print("The container-limit evidence for the trim policy was NOT produced on this machine.")
    print("=" * 78)
    sys.exit(SKIP)


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def oom_kills(cgroup):
    """memory.oom_control's oom_kill counter (kernels since 4.13); 0 when absent."""
    with open(os.path.join(cgroup, "memory.oom_control")) as f:
        for line in f:
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return 0


def make_cgroup():
    if os.geteuid() != 0:
        skip("not root: creating a memory cgroup needs root")
    if not os.path.exists(os.path.join(CONTROLLER, "memory.limit_in_bytes")):
        skip(f"no cgroup v1 memory controller at {CONTROLLER} (cgroup v2-only host?)")
    cgroup = os.path.join(CONTROLLER, f"memtide-test-{os.getpid()}")
    try:
        os.mkdir(cgroup)
    except OSError as error:
        skip(f"cannot create {cgroup}: {error}")
    try:
        write(os.path.join(cgroup, "memory.limit_in_bytes"), str(LIMIT_BYTES))
        if read_int(os.path.join(cgroup, "memory.limit_in_bytes")) != LIMIT_BYTES:
            raise OSError("the kernel did not take the limit")
    except OSError as error:
        remove_cgroup(cgroup)
        skip(f"cannot set memory.limit_in_bytes in {cgroup}: {error}")
    return cgroup


def remove_cgroup(cgroup):
    """Kills what is left in the cgroup (only this test's children can be there) and removes it."""
    procs = os.path.join(cgroup, "cgroup.procs")
    for _ in range(50):
        try:
            with open(procs) as f:
                pids = [int(line) for line in f if line.strip()]
        except OSError:
            break
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    for _ in range(50):
        try:
            os.rmdir(cgroup)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    print(f"warning: could not remove {cgroup}", file=sys.stderr)


def run_in_cgroup(cgroup, argv, env):
    """Runs argv with its pid in the cgroup from before exec. Returns (exit code, stdout, stderr, the cgroup's
    max usage during the run, OOM kills during the run, seconds, pid)."""
    write(os.path.join(cgroup, "memory.max_usage_in_bytes"), "0")  # restart the high-water mark
    kills_before = oom_kills(cgroup)
    procs = os.path.join(cgroup, "cgroup.procs")

    def enter_cgroup():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=enter_cgroup)
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"{argv[0]} ran past {RUN_TIMEOUT_S} s:\n{stderr[-2000:]}")
    seconds = time.monotonic() - started
    max_usage = read_int(os.path.join(cgroup, "memory.max_usage_in_bytes"))
    return process.returncode, stdout, stderr, max_usage, oom_kills(cgroup) - kills_before, seconds, process.pid


def segment_json(cli, directory, pid):
    out = subprocess.run([cli, "show", "--dir", directory, str(pid), "--json"], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise AssertionError(f"memtide show {pid} failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout)


def percent(value):
    return 100.0 * value / LIMIT_BYTES


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    preload, cli, workload = sys.argv[1:]
    base_env = {k: v for k, v in os.environ.items()
                if k != "LD_PRELOAD" and not k.startswith(("MEMTIDE_", "MALLOC_", "GLIBC_TUNABLES"))}
    cgroup = make_cgroup()
    segments = tempfile.mkdtemp(prefix="memtide-trim-test.")
    failures = []

    def check(condition, text):
        print(f"{'ok  ' if condition else 'FAIL'}  {text}")
        if not condition:
            failures.append(text)

    try:
        print(f"cgroup {cgroup}: memory.limit_in_bytes = {LIMIT_BYTES // MIB} MiB; workload: "
              f"{os.path.basename(workload)} {' '.join(WORKLOAD_ARGS)}")

        # 1. Control: plain glibc.
        code, out, err, plain_max, kills, seconds, _ = run_in_cgroup(cgroup, [workload] + WORKLOAD_ARGS, base_env)
        print(f"plain:            max usage {plain_max / MIB:6.1f} MiB = {percent(plain_max):5.1f}% of the limit, "
              f"exit {code}, OOM kills {kills}, {seconds:.1f} s")
        if kills == 0:
            check(code == 0, f"plain run exited 0 (got {code}): {err[-500:]}")
        check(kills > 0 or plain_max >= CONTROL_AT_LEAST * LIMIT_BYTES,
              f"control: plain glibc reaches >= {CONTROL_AT_LEAST:.0%} of the limit or is OOM-killed "
              f"({percent(plain_max):.1f}%)")

        # 2. memtide, default policy.
        env = dict(base_env, LD_PRELOAD=preload, MEMTIDE_DIR=segments, MEMTIDE_KEEP_SEGMENT="1")
        code, out, err, memtide_max, kills, seconds, pid = run_in_cgroup(cgroup, [workload] + WORKLOAD_ARGS, env)
        print(f"memtide:          max usage {memtide_max / MIB:6.1f} MiB = {percent(memtide_max):5.1f}% of the limit, "
              f"exit {code}, OOM kills {kills}, {seconds:.1f} s")
        check(code == 0 and kills == 0, f"memtide run exited 0 without OOM kill (exit {code}, kills {kills}): "
              f"{err[-500:]}")
        check(memtide_max < TARGET_BELOW * LIMIT_BYTES,
              f"memtide keeps max usage under {TARGET_BELOW:.0%} of the limit ({percent(memtide_max):.1f}%)")
        if code == 0:
            segment = segment_json(cli, segments, pid)
            trim, alert, cg = segment["trim"], segment["alert"], segment["cgroup"]
            print(f"  segment: cgroup v{cg['version']} limit {cg['limit_bytes'] / MIB:.0f} MiB; trims {trim['trims']} "
                  f"({trim['last_reason']} last), released {trim['released_bytes'] / MIB:.1f} MiB in "
                  f"{trim['time_s']:.3f} s; alert level {alert['level']}, entries {alert['entries']}")
            check(cg["version"] == 1 and cg["limit_bytes"] == LIMIT_BYTES,
                  "memtide read the container's limit (cgroup v1, 512 MiB)")
            check(alert["limit_bytes"] == LIMIT_BYTES, "alerts compare against the container's limit")
            check(trim["trims"] >= 1 and trim["released_bytes"] > 0, "the policy trimmed and released memory")
            check(all(count == 0 for count in alert["entries"].values()) and alert["level"] == "normal",
                  "under 60% in use, the alert level never left normal")

        # 3. memtide with the policy off: the same climb as plain, so the alerts must fire; then a requested
        # trim (memtide_trim()) brings the level back to normal.
        env = dict(base_env, LD_PRELOAD=preload, MEMTIDE_DIR=segments, MEMTIDE_KEEP_SEGMENT="1", MEMTIDE_TRIM="0")
        argv = [workload] + WORKLOAD_ARGS + ["--api-trim"]
        code, out, err, off_max, kills, seconds, pid = run_in_cgroup(cgroup, argv, env)
        print(f"memtide, TRIM=0:  max usage {off_max / MIB:6.1f} MiB = {percent(off_max):5.1f}% of the limit, "
              f"exit {code}, OOM kills {kills}, {seconds:.1f} s")
        check(code == 0 and kills == 0, f"policy-off run exited 0 without OOM kill (exit {code}, kills {kills}): "
              f"{err[-500:]}")
        check(off_max >= CONTROL_AT_LEAST * LIMIT_BYTES,
              f"with the policy off, memtide alone does not lower usage (>= {CONTROL_AT_LEAST:.0%}: "
              f"{percent(off_max):.1f}%)")
        if code == 0:
            segment = segment_json(cli, segments, pid)
            trim, alert = segment["trim"], segment["alert"]
            print(f"  segment: trims {trim['trims']} ({trim['last_reason']} last); alert level {alert['level']} "
                  f"at the end ({percent(alert['used_bytes']):.1f}% in use), entries {alert['entries']}")
            entries = alert["entries"]
            check(entries["warning"] >= 1, "alert level warning was entered (usage above 80%)")
            check(entries["severe"] == 0 and entries["danger"] == 0,
                  "alert levels severe and danger were not entered (usage stayed under 90%, >= 50 MB available)")
            check(trim["trims"] == 1 and trim["last_reason"] == "requested",
                  "MEMTIDE_TRIM=0: no policy trim; the one trim is memtide_trim()'s")
            check(alert["level"] == "normal", "after the requested trim, the alert level is back to normal")
    except AssertionError as error:
        failures.append(str(error))
        print(f"FAIL  {error}")
    finally:
        remove_cgroup(cgroup)
        shutil.rmtree(segments, ignore_errors=True)

    if failures:
        print(f"\ntrim.cgroup_limit: {len(failures)} check(s) failed")
        return 1
    print("\ntrim.cgroup_limit: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

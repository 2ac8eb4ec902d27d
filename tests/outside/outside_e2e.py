#!/usr/bin/python3
"""End-to-end tests of memtide's outside view: top, gc, show, trim, reset-peak, doctor, monitor and export,
run as the real CLI against real traced processes (programs/outside_target.c under LD_PRELOAD), hand-made
segments (programs/segment_forge.cc), garbage files, a memory cgroup with a limit, and a real Prometheus.

usage: outside_e2e.py CASE --cli memtide --preload libmemtide.so --target outside_target --forge segment_forge
                      --fake-nvml-dir DIR --golden DIR
One CASE per ctest (tests/outside/CMakeLists.txt). Exit 0 passed, 1 failed, 77 skipped (said loudly on stdout:
only where the machine cannot do it, e.g. not root for cgroups, or no prometheus binary).
MEMTIDE_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing.
"""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SKIP = 77
MiB = 1 << 20
NOBODY = 65534
ARGS = None


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, message, *context):
    if not condition:
        details = "\n".join(str(item) for item in context)
        raise Failure(message + ("\n" + details if details else ""))


def wait_until(predicate, what, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    raise Failure(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def base_env(extra=None):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MEMTIDE_") and key not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
    env.update(extra or {})
    return env


def memtide(*args, env=None, timeout=30, user=None, expect=0, cwd=None):
    """Runs the CLI; returns (stdout, stderr). `expect` is the exit code required (None: any)."""
    command = [ARGS.cli, *map(str, args)]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, env=base_env(env), timeout=timeout, cwd=cwd,
                            errors="replace")
    if expect is not None and result.returncode != expect:
        raise Failure(f"{' '.join(command)} exited {result.returncode}, expected {expect}\n"
                      f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.stdout, result.stderr


def top_json(directory, **kwargs):
    out, _ = memtide("top", "--once", "--json", "--dir", directory, **kwargs)
    return json.loads(out)


def row_of(directory, pid):
    for row in top_json(directory)["processes"]:
        if row["pid"] == pid:
            return row
    return None


class Target:
    """outside_target under LD_PRELOAD, driven line by line."""

    def __init__(self, directory, env=None, preexec_fn=None, user=None):
        full_env = base_env({"LD_PRELOAD": ARGS.preload, "MEMTIDE_DIR": directory, "MEMTIDE_INTERVAL": "50ms"})
        full_env.update(env or {})
        command = [ARGS.target]
        if user is not None:
            # setpriv itself runs traced: memtide's thread steps aside while it drops privileges (regression:
            # it used to abort in glibc's setxid broadcast).
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=full_env, preexec_fn=preexec_fn)
        line = self.process.stdout.readline()
        check(line.startswith("ready "), f"outside_target did not start: {line!r}",
              self.process.stderr.read() if self.process.poll() is not None else "")
        self.pid = int(line.split()[1])

    def send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        check(answer.startswith("ok"), f"outside_target answered {answer!r} to {command!r}")
        return answer

    def exit(self, code=0, how="exit"):
        self.process.stdin.write(f"{how} {code}\n")
        self.process.stdin.flush()
        return self.process.wait(timeout=10)

    def kill(self, signal_number=signal.SIGKILL):
        self.process.send_signal(signal_number)
        return self.process.wait(timeout=10)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass


class Scratch:
    """A private directory (segments, files), removed at the end, with every started process stopped."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="memtide-outside-")
        os.chmod(self.path, 0o755)  # the cases that run commands as another user need to reach inside
        self.targets = []
        self.processes = []

    def dir(self, name="segments", mode=0o700):
        path = os.path.join(self.path, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
        return path

    def target(self, directory, **kwargs):
        target = Target(directory, **kwargs)
        self.targets.append(target)
        return target

    def popen(self, command, **kwargs):
        process = subprocess.Popen(command, **kwargs)
        self.processes.append(process)
        return process

    def close(self):
        for target in self.targets:
            target.close()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.path, ignore_errors=True)


def forge(*args):
    subprocess.run([ARGS.forge, *map(str, args)], check=True)


def segment_path(directory, pid):
    names = [name for name in os.listdir(directory) if name.startswith(f"memtide.{pid}.")]
    check(len(names) == 1, f"expected one segment of pid {pid} in {directory}", os.listdir(directory))
    return os.path.join(directory, names[0])


def can_run_as_nobody():
    try:
        subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", ARGS.cli,
                        "--version"], check=True, capture_output=True, timeout=10)
        subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "test", "-r",
                        ARGS.preload], check=True, capture_output=True, timeout=10)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def require_root_and_nobody():
    if os.geteuid() != 0:
        raise Skip("needs root (to act as another user with setpriv)")
    if not can_run_as_nobody():
        raise Skip(f"user {NOBODY} cannot run {ARGS.cli} (a parent directory is not world-readable)")


def compare_golden(name, actual):
    path = os.path.join(ARGS.golden, name)
    if os.environ.get("MEMTIDE_UPDATE_GOLDEN") == "1":
        with open(path, "w") as out:
            out.write(actual)
        print(f"updated {path}")
        return
    with open(path) as golden:
        expected = golden.read()
    if actual != expected:
        import difflib
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "golden/" + name,
                                            "actual"))
        raise Failure(f"output differs from {path} (MEMTIDE_UPDATE_GOLDEN=1 rewrites it):\n{diff}")


# ---------------------------------------------------------------------------------------------------------
# Cases


def case_top_golden(scratch):
    directory = scratch.dir()
    forge("golden", directory)
    out, err = memtide("top", "--once", "--dir", directory)
    compare_golden("top_once.txt", out)
    check(re.search(r"skipped .*/memtide\.4194307\.\d+: has no memtide magic", err), "garbage not named", err)
    out, _ = memtide("top", "--once", "--sort", "heap", "--dir", directory)
    compare_golden("top_once_sort_heap.txt", out)
    document = top_json(directory)
    rows = {row["pid"]: row for row in document["processes"]}
    check(set(rows) == {1, 4194305, 4194306}, "pids", document)
    check(rows[1]["state"] == "running" and rows[4194305]["state"] == "killed" and rows[4194306]["state"] == "exited",
          "states", document)
    check(rows[1]["cgroup"]["percent"] == 850 / 1024 * 100, "cgroup percent", rows[1])
    check(rows[4194305]["gpu"]["current_bytes"] == 3072 * MiB, "gpu sum", rows[4194305])
    check(rows[4194306]["gpu"] is None, "no gpu", rows[4194306])
    check(len(document["skipped"]) == 1, "skipped", document)


def case_top_live(scratch):
    directory = scratch.dir()
    small = scratch.target(directory)
    big = scratch.target(directory)
    small.send("alloc 11001")
    big.send("grow 8")
    wait_until(lambda: (row_of(directory, big.pid) or {}).get("heap", {}).get("current_bytes", 0) >= 8 * MiB,
               "the grown heap in top")
    document = top_json(directory)
    pids = [row["pid"] for row in document["processes"]]
    check(sorted(pids) == sorted([small.pid, big.pid]), "both processes", document)
    for row in document["processes"]:
        check(row["state"] == "running", "running", row)
        check(row["command"][0] == ARGS.target, "command", row)
        check(row["rss"]["current_bytes"] > 0, "rss sampled", row)
    out, _ = memtide("top", "--once", "--sort", "heap", "--dir", directory)
    lines = out.splitlines()
    check(lines[0].split()[:3] == ["PID", "STATE", "HEAP"], "header", out)
    check(int(lines[1].split()[0]) == big.pid and int(lines[2].split()[0]) == small.pid, "heap order", out)
    out, _ = memtide("top", "--once", "--sort", "pid", "--dir", directory)
    check([int(line.split()[0]) for line in out.splitlines()[1:]] == sorted(pids), "pid order", out)
    # Refreshing: three screens, each with both processes.
    started = time.monotonic()
    out, _ = memtide("top", "--interval", "100ms", "--count", "3", "--dir", directory)
    check(time.monotonic() - started >= 0.2, "refresh interval honoured")
    screens = out.split("memtide top  ")[1:]
    check(len(screens) == 3, "three screens", out)
    for screen in screens:
        check(f" {small.pid} running" in screen and f" {big.pid} running" in screen, "both in every screen", screen)
    out, _ = memtide("top", "--json", "--interval", "100ms", "--count", "2", "--dir", directory)
    documents = [json.loads(line) for line in out.splitlines()]
    check(len(documents) == 2 and all(len(d["processes"]) == 2 for d in documents), "json lines", out)
    # A process that exits normally removes its segment and leaves the table.
    check(small.exit(0) == 0, "small exits")
    check([row["pid"] for row in top_json(directory)["processes"]] == [big.pid], "small is gone")
    # A bad flag is refused before anything runs.
    _, err = memtide("top", "--interval", "0.001", "--dir", directory, expect=2)
    check("out of range" in err, "interval range", err)


def case_top_refuses_garbage(scratch):
    directory = scratch.dir()
    target = scratch.target(directory)
    real = segment_path(directory, target.pid)
    with open(os.path.join(directory, "memtide.1.1"), "w") as out:
        out.write("not a segment\n")
    os.symlink(real, os.path.join(directory, "memtide.2.2"))
    os.mkfifo(os.path.join(directory, "memtide.3.3"))
    with open(real, "rb") as source, open(os.path.join(directory, "memtide.4.4"), "wb") as out:
        out.write(source.read(100))
    os.mkdir(os.path.join(directory, "memtide.5.5"))
    forge("odd", os.path.join(directory, "memtide.6.6"), target.pid)
    with open(os.path.join(directory, "memtide.7.7"), "wb") as out:
        out.truncate(1 << 40)
    reasons = {"1.1": "bytes", "2.2": "symbolic link", "3.3": "not a regular file", "4.4": "truncated",
               "5.5": "not a regular file", "6.6": "kept changing", "7.7": "1099511627776 bytes"}
    started = time.monotonic()
    out, err = memtide("top", "--once", "--dir", directory, timeout=20)
    check(time.monotonic() - started < 10, "no hang on garbage")
    check(f" {target.pid} running" in out, "the real process is still shown", out, err)
    for name, reason in reasons.items():
        line = [line for line in err.splitlines() if f"/memtide.{name}:" in line]
        check(len(line) == 1 and reason in line[0], f"memtide.{name} refused with '{reason}'", err)
    # Every other command that scans the directory survives it too.
    memtide("doctor", "--dir", directory, timeout=30)
    out, _ = memtide("monitor", "--count", "1", "--dir", directory)
    check(f"pid {target.pid:>7} running" in out, "monitor shows the process", out)
    memtide("export", "--textfile", os.path.join(scratch.path, "m.prom"), "--once", "--dir", directory)
    memtide("show", target.pid, "--dir", directory)
    # show of a pid whose only segment is garbage says why.
    _, err = memtide("show", 7, "--dir", directory, expect=1)
    check("memtide.7.7" in err and "1099511627776 bytes" in err, "show names the file", err)


def case_top_refuses_other_users(scratch):
    require_root_and_nobody()
    directory = scratch.dir(mode=0o755)
    target = scratch.target(directory)
    # A live segment owned by nobody: root reads it.
    forged = os.path.join(directory, f"memtide.{target.pid}.1")
    forge("valid", forged, target.pid)
    os.chown(forged, NOBODY, NOBODY)
    out, err = memtide("top", "--once", "--dir", directory)
    check(out.count(f" {target.pid} running") == 2, "root sees both segments", out, err)
    # nobody is refused root's segments, by name, and sees its own.
    out, err = memtide("top", "--once", "--dir", directory, user=NOBODY)
    check(out.count(f" {target.pid} running") == 1, "nobody sees only its own", out, err)
    refused = [line for line in err.splitlines() if "owned by uid 0" in line]
    check(len(refused) == 1 and "only root reads others' segments" in refused[0], "refusal named", err)


def case_gc_removes_stale(scratch):
    directory = scratch.dir(mode=0o755)
    running = scratch.target(directory)
    killed = scratch.target(directory)
    exited = scratch.target(directory, env={"MEMTIDE_KEEP_SEGMENT": "1"})
    killed_path, exited_path = segment_path(directory, killed.pid), segment_path(directory, exited.pid)
    check(killed.kill() == -signal.SIGKILL, "killed")
    check(exited.exit(3, "_exit") == 3, "exited")
    rows = {row["pid"]: row for row in top_json(directory)["processes"]}
    check(rows[killed.pid]["state"] == "killed" and rows[exited.pid]["state"] == "exited", "states", rows)
    out, _ = memtide("show", exited.pid, "--dir", directory)
    check("exited with 3" in out, "exit code shown", out)
    dead = killed.pid
    temporary = os.path.join(directory, f".memtide.{dead}.123.tmp")
    open(temporary, "w").close()
    others = None
    if os.geteuid() == 0:
        others = os.path.join(directory, f"memtide.{dead}.999")
        forge("old", others, dead)
        os.chown(others, NOBODY, NOBODY)
    out, err = memtide("gc", "--dry-run", "--grace", "0", "--dir", directory)
    check(f"would remove {killed_path} (pid {killed.pid}, killed)" in out, "dry run lists killed", out, err)
    check(f"would remove {exited_path} (pid {exited.pid}, exited with 3)" in out, "dry run lists exited", out)
    check(os.path.exists(killed_path) and os.path.exists(exited_path), "dry run removes nothing")
    # The default grace leaves a segment published moments ago (another pid namespace, or just killed).
    out, err = memtide("gc", "--dir", directory)
    check(f"removed {exited_path}" in out and os.path.exists(killed_path), "grace", out, err)
    check("published" in err and killed_path in err, "grace explained", err)
    out, err = memtide("gc", "--grace", "0", "--dir", directory)
    check(f"removed {killed_path}" in out and not os.path.exists(killed_path), "killed removed", out, err)
    check(not os.path.exists(temporary), "unfinished creation removed", out)
    check(os.path.exists(segment_path(directory, running.pid)), "running kept")
    if others:
        check(os.path.exists(others) and "1 of other users (never touched)" in err, "others kept", err)


def case_show_timeline(scratch):
    directory = scratch.dir()
    target = scratch.target(directory)
    target.send("alloc 1048576")
    target.send("mark loaded")
    target.send("alloc 3145728")
    target.send("mark inference")
    target.send("mark \x1b[31mred")
    out, _ = memtide("show", target.pid, "--dir", directory)
    lines = out.splitlines()
    check(lines[0].startswith(f"pid {target.pid}  {ARGS.target}  (running"), "first line", out)
    marks = [line for line in lines if re.match(r"\s+\d+\.\d{3} s  ", line)]
    check(len(marks) == 4, "four marks in the timeline", out)
    check("marks   4:" in out, "marks header", out)
    check(marks[0].split()[2] == "start", "start first", out)
    check(re.search(r"loaded\s+\S+ \S+\s+\+1\.0 MiB", marks[1]), "change at 'loaded'", marks[1])
    check(re.search(r"inference\s+\S+ \S+\s+\+3\.0 MiB", marks[2]), "change at 'inference'", marks[2])
    check("?[31mred" in marks[3] and "\x1b" not in out, "escape sequences neutralised", repr(marks[3]))
    check(marks[2].rstrip().endswith("#" * 20), "the largest mark has the full bar", marks[2])
    document = json.loads(memtide("show", target.pid, "--json", "--dir", directory)[0])
    check([mark["label"] for mark in document["marks"]] == ["start", "loaded", "inference", "\x1b[31mred"],
          "json marks", document["marks"])
    check(document["gpu"] == [], "no gpu buckets", document)


def case_trim_and_reset_peak(scratch):
    directory = scratch.dir()
    target = scratch.target(directory, env={"MEMTIDE_TRIM": "0"})
    rss_fragmented = int(target.send("fragment 64").split()[2])
    check(rss_fragmented > 60 * MiB, "fragmented heap is resident", rss_fragmented)
    out, _ = memtide("trim", target.pid, "--dir", directory)
    check(re.match(rf"pid {target.pid} \({re.escape(ARGS.target)}\): trimmed in [\d.]+ ms: RSS [\d.]+ MiB -> "
                   r"[\d.]+ MiB \([\d.]+ MiB released\)", out), "trim line", out)
    rss_after = int(target.send("rss").split()[2])
    check(rss_after < rss_fragmented - 32 * MiB, "RSS really dropped", rss_fragmented, rss_after)
    target.send("fragment 32")
    document = json.loads(memtide("trim", target.pid, "--json", "--dir", directory)[0])
    check(document["request"] == "trim" and document["pid"] == target.pid, "json", document)
    check(document["rss_before_bytes"] > document["rss_after_bytes"], "before > after", document)
    check(document["released_bytes"] >= 16 * MiB, "released", document)
    check(document["released_bytes"] == document["rss_before_bytes"] - document["rss_after_bytes"], "sum", document)
    wait_until(lambda: json.loads(memtide("show", target.pid, "--json", "--dir", directory)[0])["trim"]["trims"] >= 2,
               "two trims published")

    target.send("grow 16")
    target.send("shrink")
    wait_until(lambda: row_of(directory, target.pid)["heap"]["peak_bytes"] >= 16 * MiB, "the peak published")
    out, _ = memtide("reset-peak", target.pid, "--dir", directory)
    check(re.match(rf"pid {target.pid} \(.*\): heap peak reset from \d+\.\d MiB to .+ \(current .+\)", out),
          "reset line", out)
    document = json.loads(memtide("reset-peak", target.pid, "--json", "--dir", directory)[0])
    check(document["peak_bytes"] == document["current_bytes"] < 16 * MiB, "peak = current", document)
    wait_until(lambda: row_of(directory, target.pid)["heap"]["peak_bytes"] < 16 * MiB, "the reset peak published")


def case_trim_unanswered(scratch):
    directory = scratch.dir()
    target = scratch.target(directory)
    target.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        _, err = memtide("trim", target.pid, "--timeout", "300ms", "--dir", directory, expect=1)
        check(0.3 <= time.monotonic() - started < 5, "gave up at the timeout")
        check(f"pid {target.pid}" in err and "did not answer the trim request within 300 ms" in err
              and "is stopped" in err, "clear message for a stopped process", err)
    finally:
        target.process.send_signal(signal.SIGCONT)
    memtide("trim", target.pid, "--dir", directory)  # answers once resumed
    # A live process with a segment but no monitor thread (a forged one for `sleep`).
    sleeper = scratch.popen(["sleep", "60"])
    forge("valid", os.path.join(directory, f"memtide.{sleeper.pid}.1"), sleeper.pid)
    _, err = memtide("reset-peak", sleeper.pid, "--timeout", "200ms", "--dir", directory, expect=1)
    check("did not answer the reset-peak request within 200 ms" in err and "monitor thread" in err, "no monitor", err)
    # Ended processes and unknown pids get one line saying so.
    killed = scratch.target(directory)
    killed.kill()
    _, err = memtide("trim", killed.pid, "--dir", directory, expect=1)
    check("is not running (killed)" in err, "killed", err)
    _, err = memtide("trim", 4194400, "--dir", directory, expect=1)
    check("no memtide segment for pid 4194400" in err, "unknown pid", err)
    _, err = memtide("trim", target.pid, "--timeout", "soon", "--dir", directory, expect=2)
    check("'soon' is not a duration" in err, "bad timeout", err)


def case_trim_not_owner(scratch):
    require_root_and_nobody()
    directory = scratch.dir(mode=0o777)
    roots = scratch.target(directory)
    _, err = memtide("trim", roots.pid, "--dir", directory, user=NOBODY, expect=1)
    check("owned by uid 0" in err, "nobody cannot ask root's process", err)
    check(json.loads(memtide("show", roots.pid, "--json", "--dir", directory)[0])["trim"]["trims"] == 0,
          "nothing was trimmed")
    nobodys = scratch.target(directory, user=NOBODY)
    out, _ = memtide("trim", nobodys.pid, "--dir", directory)  # root may
    check("trimmed" in out, "root trims nobody's process", out)
    out, _ = memtide("trim", nobodys.pid, "--dir", directory, user=NOBODY)  # and so may its owner
    check("trimmed" in out, "the owner trims its own process", out)


def case_doctor(scratch):
    directory = scratch.dir()
    target = scratch.target(directory)
    out, _ = memtide("doctor", "--dir", directory)
    for section in ("memtide doctor  ", "\nmemory      total ", "\nalert       ", "\nprocesses   the 5 with the most RSS",
                    f"\nsegments    1 in {directory}", "\ngpu         "):
        check(section in out, f"section {section.strip()!r}", out)
    check(f" {target.pid} running" in out, "the segment is listed", out)
    document = json.loads(memtide("doctor", "--json", "--dir", directory)[0])
    with open("/proc/meminfo") as meminfo:
        total = int(re.search(r"MemTotal:\s+(\d+) kB", meminfo.read()).group(1)) * 1024
    check(document["memtide_doctor_version"] == 1, "version", document)
    check(document["system"]["total_bytes"] == total, "MemTotal", document["system"])
    check(len(document["top_processes"]) == 5, "five processes", document)
    rss = [process["rss_bytes"] for process in document["top_processes"]]
    check(rss == sorted(rss, reverse=True), "sorted by RSS", rss)
    check([row["pid"] for row in document["segments"]] == [target.pid], "segments", document["segments"])
    check(document["alert"]["level"] in ("normal", "warning", "severe", "danger"), "level", document["alert"])
    check(document["alert"]["warning_permille"] == 800 and document["alert"]["danger_available_bytes"] == 50000000,
          "the seed's thresholds by default", document["alert"])
    with open("/proc/self/cgroup") as own:
        cgroup_text = own.read()
    if re.search(r"^\d+:[^:]*\bmemory\b[^:]*:", cgroup_text, re.M) or os.path.exists("/sys/fs/cgroup/memory.current"):
        check(any(c["memory_controller"] for c in document["cgroups"]), "a memory cgroup is reported",
              document["cgroups"])
    # MEMTIDE_ALERT_* move the thresholds, as they do in the traced processes.
    document = json.loads(memtide("doctor", "--json", "--dir", directory, env={"MEMTIDE_ALERT_DANGER": "1T"})[0])
    check(document["alert"]["level"] == "danger", "danger by threshold", document["alert"], document["pressure"])
    out, _ = memtide("doctor", "--dir", directory, env={"MEMTIDE_ALERT_DANGER": "1T"})
    check("\nalert       DANGER: " in out and "memtide trim PID" in out, "danger advice", out)


def nvml_on_machine():
    result = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True)
    return "libnvidia-ml.so.1" in result.stdout


def case_doctor_gpu_sources(scratch):
    directory = scratch.dir()
    bin_dir = scratch.dir("bin", 0o755)
    smi = os.path.join(bin_dir, "nvidia-smi")
    with open(smi, "w") as out:
        out.write("#!/bin/sh\n"
                  "[ \"$1\" = --query-gpu=index,name,memory.used,memory.total ] || exit 9\n"
                  "echo '0, Fake Tesla T4, 100, 15360'\necho '1, Fake, Inc. A100, 2048, 40960'\n")
    os.chmod(smi, 0o755)
    path = bin_dir + ":/usr/sbin:/usr/bin:/sbin:/bin"
    document = json.loads(memtide("doctor", "--json", "--dir", directory, env={"PATH": path})[0])
    gpu = document["gpu"]
    if nvml_on_machine():
        check(gpu["source"] == "nvml", "the machine's NVML comes first", gpu)
    else:
        check(gpu["source"] == "nvidia-smi", "nvidia-smi without NVML", gpu)
        check([d["name"] for d in gpu["devices"]] == ["Fake Tesla T4", "Fake, Inc. A100"], "names", gpu)
        check(gpu["devices"][1]["used_bytes"] == 2048 * MiB and gpu["devices"][1]["total_bytes"] == 40960 * MiB,
              "bytes", gpu)
        out, _ = memtide("doctor", "--dir", directory, env={"PATH": path})
        check("gpu         2 devices (from nvidia-smi)" in out and "1: Fake, Inc. A100  2.0 GiB of 40.0 GiB" in out,
              "text", out)
        document = json.loads(memtide("doctor", "--json", "--dir", directory, env={"PATH": "/usr/bin:/bin"})[0])
        check(document["gpu"]["source"] == "none" and "no nvidia-smi" in document["gpu"]["note"], "no GPU",
              document["gpu"])
        out, _ = memtide("doctor", "--dir", directory, env={"PATH": "/usr/bin:/bin"})
        check("gpu         no GPU (no libnvidia-ml.so.1; no nvidia-smi)" in out, "no GPU text", out)
    document = json.loads(memtide("doctor", "--json", "--dir", directory,
                                  env={"LD_LIBRARY_PATH": ARGS.fake_nvml_dir, "PATH": path})[0])
    gpu = document["gpu"]
    check(gpu["source"] == "nvml" and gpu["driver_version"] == "999.99", "fake NVML first", gpu)
    check(gpu["devices"] == [{"index": 0, "name": "Fake GPU 80GB", "used_bytes": 1234 * MiB,
                              "total_bytes": 81920 * MiB}], "fake NVML device", gpu)


def case_monitor(scratch):
    directory = scratch.dir()
    staying = scratch.target(directory)
    leaving = scratch.target(directory)
    sleeper = scratch.popen(["sleep", "60"])
    forged = os.path.join(directory, f"memtide.{sleeper.pid}.1")
    forge("valid", forged, sleeper.pid)
    csv_path = os.path.join(scratch.path, "monitor.csv")
    monitor = scratch.popen([ARGS.cli, "monitor", "--interval", "300ms", "--count", "6", "--csv", csv_path,
                             "--dir", directory], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=base_env())
    time.sleep(0.45)
    leaving.exit(0)
    # The forged process's alert level rises: the monitor says so on its own line.
    forge("valid", forged + ".tmp", sleeper.pid, "warning")
    os.replace(forged + ".tmp", forged)
    out, err = monitor.communicate(timeout=30)
    check(monitor.returncode == 0, "monitor exit", out, err)
    lines = out.splitlines()
    staying_lines = [line for line in lines if re.search(rf" pid {staying.pid:>7} running ", line)]
    check(len(staying_lines) == 6, "one line per interval for the staying process", out)
    check(all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ pid ", line) for line in staying_lines), "timestamps", out)
    check(any(f"ENDED pid {leaving.pid} exited and removed its segment" in line for line in lines), "ended", out)
    check(sum(1 for line in lines if re.search(rf" pid {leaving.pid:>7} running ", line)) < 6, "gone after", out)
    alerts = [line for line in lines if " ALERT " in line]
    check(len(alerts) == 1 and f"ALERT pid {sleeper.pid} normal -> warning" in alerts[0], "alert change", out)
    with open(csv_path, newline="") as source:
        rows = list(csv.reader(source))
    check(rows[0][:5] == ["time_unix_s", "time", "pid", "command", "state"] and len(rows[0]) == 16, "header", rows[0])
    check(all(len(row) == 16 for row in rows), "16 fields", rows)
    check(sum(1 for row in rows[1:] if row[2] == str(staying.pid)) == 6, "csv rows", rows)
    changed = [row for row in rows[1:] if row[14] == "1"]
    check(len(changed) == 1 and changed[0][2] == str(sleeper.pid) and changed[0][13] == "warning", "csv alert", rows)
    # A second run appends without a second header.
    memtide("monitor", "--count", "1", "--csv", csv_path, "--dir", directory)
    with open(csv_path) as source:
        check(source.read().count("time_unix_s") == 1, "one header")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_exporter(scratch, directory):
    exporter = scratch.popen([ARGS.cli, "export", "--listen", "127.0.0.1:0", "--dir", directory],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base_env())
    line = exporter.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
    check(match, "the exporter says where it serves", line)
    return exporter, int(match.group(1))


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers.get("Content-Type"), response.read().decode()


def case_export_http_and_textfile(scratch):
    directory = scratch.dir()
    target = scratch.target(directory)
    target.send("alloc 11001")
    target.send("mark published")
    heap = row_of(directory, target.pid)["heap"]["current_bytes"]
    exporter, port = start_exporter(scratch, directory)
    status, content_type, body = http_get(f"http://127.0.0.1:{port}/metrics")
    check(status == 200 and content_type.startswith("text/plain; version=0.0.4"), "content type", content_type)
    labels = f'pid="{target.pid}",command="{os.path.basename(ARGS.target)}"'
    check(f"memtide_heap_current_bytes{{{labels}}} {heap}\n" in body, "heap metric", body)
    check(f"memtide_process_running{{{labels}}} 1\n" in body, "running metric", body)
    check("# TYPE memtide_heap_allocations_total counter\n" in body, "counter type", body)
    check(http_get(f"http://127.0.0.1:{port}/")[0] == 200, "index page")
    if shutil.which("promtool"):
        lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        check(lint.returncode == 0, "promtool accepts the exposition", lint.stdout, lint.stderr)
    exporter.send_signal(signal.SIGTERM)
    check(exporter.wait(timeout=5) == 0, "exporter stops on SIGTERM")
    # Textfile, once, atomically.
    textfile_dir = scratch.dir("textfile", 0o755)
    textfile = os.path.join(textfile_dir, "memtide.prom")
    memtide("export", "--textfile", textfile, "--once", "--dir", directory)
    with open(textfile) as source:
        check(f"memtide_heap_current_bytes{{{labels}}} {heap}\n" in source.read(), "textfile metric")
    check(os.listdir(textfile_dir) == ["memtide.prom"], "no temporary left", os.listdir(textfile_dir))
    # Textfile, refreshed.
    os.unlink(textfile)
    writer = scratch.popen([ARGS.cli, "export", "--textfile", textfile, "--interval", "100ms", "--dir", directory],
                           env=base_env())
    wait_until(lambda: os.path.exists(textfile), "the textfile")
    first = os.stat(textfile).st_mtime_ns
    wait_until(lambda: os.stat(textfile).st_mtime_ns != first, "a refresh")
    writer.send_signal(signal.SIGINT)
    check(writer.wait(timeout=5) == 0, "writer stops on SIGINT")
    # A port in use and a bad address are one line each.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        _, err = memtide("export", "--listen", f"127.0.0.1:{busy.getsockname()[1]}", "--dir", directory, expect=1)
        check("cannot listen on 127.0.0.1:" in err, "port in use", err)
    _, err = memtide("export", "--listen", "localhost", expect=2)
    check("has no :PORT" in err, "bad address", err)


def case_export_prometheus_server(scratch):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise Skip("no prometheus binary (Debian package 'prometheus'); the exporter's end-to-end scrape is not tested")
    directory = scratch.dir()
    target = scratch.target(directory)
    target.send("alloc 12001")
    target.send("mark scraped")
    heap = row_of(directory, target.pid)["heap"]["current_bytes"]
    exporter, port = start_exporter(scratch, directory)
    web_port = free_port()
    config = os.path.join(scratch.path, "prometheus.yml")
    with open(config, "w") as out:
        out.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                  f"scrape_configs:\n  - job_name: memtide\n    static_configs:\n"
                  f"      - targets: ['127.0.0.1:{port}']\n")
    log = open(os.path.join(scratch.path, "prometheus.log"), "w")
    server = scratch.popen([prometheus, f"--config.file={config}",
                            f"--storage.tsdb.path={os.path.join(scratch.path, 'tsdb')}",
                            f"--web.listen-address=127.0.0.1:{web_port}"], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{web_port}"

    def ready():
        try:
            return http_get(base + "/-/ready", timeout=2)[0] == 200
        except OSError:
            return server.poll() is not None and "exited"

    check(wait_until(ready, "prometheus to be ready", timeout=60, step=0.2) is True, "prometheus runs",
          open(log.name).read()[-3000:])
    query = urllib.parse.quote(f'memtide_heap_current_bytes{{pid="{target.pid}"}}')

    def answer():
        document = json.loads(http_get(f"{base}/api/v1/query?query={query}")[2])
        return document["data"]["result"]

    result = wait_until(answer, "the scraped metric in Prometheus", timeout=60, step=0.5)
    check(len(result) == 1, "one series", result)
    metric = result[0]["metric"]
    check(metric["job"] == "memtide" and metric["command"] == os.path.basename(ARGS.target)
          and metric["pid"] == str(target.pid), "labels", metric)
    check(int(result[0]["value"][1]) == heap, "value read back through Prometheus", result, heap)
    up = json.loads(http_get(f"{base}/api/v1/query?query=up")[2])["data"]["result"]
    check(up and up[0]["value"][1] == "1", "the scrape target is up", up)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def case_pid_namespace(scratch):
    """A container's process seen from the host: its segment names its pid inside (1), not the host's."""
    if os.geteuid() != 0 or subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                                           capture_output=True).returncode != 0:
        raise Skip("needs root and unshare --pid (a pid namespace stands in for a container)")
    directory = scratch.dir()
    target = Target.__new__(Target)
    env = base_env({"LD_PRELOAD": ARGS.preload, "MEMTIDE_DIR": directory, "MEMTIDE_INTERVAL": "50ms"})
    target.process = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", ARGS.target],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=env)
    scratch.targets.append(target)
    target.pid = int(target.process.stdout.readline().split()[1])
    check(target.pid == 1, "pid 1 inside its namespace", target.pid)
    row = row_of(directory, 1)
    check(row and row["state"] == "running" and row["local_pid"] != 1, "running, under its host pid", row)
    host_pid = row["local_pid"]
    with open(f"/proc/{host_pid}/status") as status:
        check(re.search(r"NSpid:\s+%d\s+1\n" % host_pid, status.read()), "the host pid is the process's")
    out, _ = memtide("top", "--once", "--dir", directory)
    check(re.search(rf"^\s*{host_pid} running ", out, re.M), "top shows the host pid", out)
    out, _ = memtide("show", host_pid, "--dir", directory)
    check(out.startswith("pid 1  ") and "(running" in out, "show by host pid", out)
    target.send("fragment 16")
    out, _ = memtide("trim", host_pid, "--dir", directory)
    check(out.startswith(f"pid {host_pid} (") and "trimmed" in out, "trim across the namespace", out)
    memtide("gc", "--grace", "0", "--dir", directory)
    check(row_of(directory, 1) is not None, "gc keeps a live container process")
    target.process.kill()
    target.process.wait(timeout=10)
    wait_until(lambda: (row_of(directory, 1) or {}).get("state") == "killed", "killed once it is gone")


CGROUP_V1_ROOT = "/sys/fs/cgroup/memory"


class Cgroup:
    """A memory cgroup with a limit, v1 (as asked) or v2, removed at the end."""

    def __init__(self, limit_bytes):
        if os.geteuid() != 0:
            raise Skip("needs root to create a memory cgroup")
        name = f"memtide-test-{os.getpid()}"
        if os.path.isfile(os.path.join(CGROUP_V1_ROOT, "memory.usage_in_bytes")) or os.path.isdir(CGROUP_V1_ROOT) \
                and os.path.isfile(os.path.join(CGROUP_V1_ROOT, "cgroup.procs")):
            self.version, self.path = 1, os.path.join(CGROUP_V1_ROOT, name)
            limit_file = "memory.limit_in_bytes"
        elif "memory" in open("/sys/fs/cgroup/cgroup.subtree_control").read() \
                if os.path.exists("/sys/fs/cgroup/cgroup.subtree_control") else False:
            self.version, self.path = 2, os.path.join("/sys/fs/cgroup", name)
            limit_file = "memory.max"
        else:
            raise Skip("no writable memory cgroup controller (v1 at /sys/fs/cgroup/memory or v2 with memory enabled)")
        try:
            os.mkdir(self.path)
            with open(os.path.join(self.path, limit_file), "w") as out:
                out.write(str(limit_bytes))
            if self.version == 1 and os.path.exists(os.path.join(self.path, "memory.memsw.limit_in_bytes")):
                try:
                    with open(os.path.join(self.path, "memory.memsw.limit_in_bytes"), "w") as out:
                        out.write(str(limit_bytes))  # no swap: the limit is the limit
                except OSError:
                    pass
        except OSError as error:
            self.remove()
            raise Skip(f"cannot create a memory cgroup at {self.path}: {error}")

    def enter(self):
        """For preexec_fn: moves the calling (child) process in."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as out:
            out.write(str(os.getpid()))

    def remove(self):
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)
        print(f"WARNING: could not remove the cgroup {self.path}")


def case_cgroup_limit(scratch):
    limit = 256 * MiB
    cgroup = Cgroup(limit)
    try:
        directory = scratch.dir()
        thresholds = {"MEMTIDE_ALERT_WARNING": "0.5", "MEMTIDE_ALERT_SEVERE": "0.75", "MEMTIDE_ALERT_DANGER": "40MB"}
        target = scratch.target(directory, env={"MEMTIDE_TRIM": "0", **thresholds}, preexec_fn=cgroup.enter)
        csv_path = os.path.join(scratch.path, "monitor.csv")
        # To files, not pipes: nothing reads them until the end, and a full pipe would stall the monitor.
        monitor_out = open(os.path.join(scratch.path, "monitor.out"), "w+")
        monitor = scratch.popen([ARGS.cli, "monitor", "--interval", "100ms", "--csv", csv_path, "--dir", directory],
                                stdout=monitor_out, stderr=subprocess.STDOUT, text=True, env=base_env())

        def level_is(level):
            row = row_of(directory, target.pid)
            return row if row and row["alert"] == level else False

        row = wait_until(lambda: level_is("normal"), "normal at start")
        check(row["cgroup"]["version"] == cgroup.version and row["cgroup"]["limit_bytes"] == limit, "limit seen",
              row["cgroup"])
        # limit 256 MiB: warning above 128 MiB in use, severe above 192 MiB, danger under 40 MB available.
        for grow, level in ((150, "warning"), (50, "severe"), (25, "danger")):
            target.send(f"grow {grow}")
            row = wait_until(lambda: level_is(level), f"alert level {level}")
            time.sleep(0.3)  # a monitor interval or two
        check(row["cgroup"]["percent"] > 80, "share of the limit", row["cgroup"])
        out, _ = memtide("top", "--once", "--dir", directory)
        line = [line for line in out.splitlines() if line.split()[0] == str(target.pid)][0]
        check(" danger " in line and re.search(r" \d+\.\d% ", line), "top shows share and level", out)

        def doctor(*flags):
            result = subprocess.run([ARGS.cli, "doctor", *flags, "--dir", directory], capture_output=True, text=True,
                                    env=base_env(thresholds), preexec_fn=cgroup.enter, timeout=60)
            check(result.returncode == 0, "doctor in the cgroup", result.stdout, result.stderr)
            return result.stdout

        document = json.loads(doctor("--json"))
        detail = [c for c in document["cgroups"] if c["version"] == cgroup.version][0]
        check(detail["limit_bytes"] == limit and detail["path"].endswith(os.path.basename(cgroup.path)),
              "doctor's cgroup", detail)
        check(document["pressure"]["source"] == "cgroup" and document["pressure"]["limit_bytes"] == limit, "pressure",
              document["pressure"])
        check(document["alert"]["level"] == "danger", "doctor's level", document["alert"], document["pressure"])
        text = doctor()
        check(f"cgroup v{cgroup.version}   /{os.path.basename(cgroup.path)}" in text and "\nalert       DANGER: the "
              "container's working set is" in text, "doctor text", text)

        target.send("shrink")
        wait_until(lambda: level_is("normal"), "normal after shrinking")
        time.sleep(0.3)
        # Past the limit: the kernel OOM-kills it; its last published state stays, shown as killed.
        target.process.stdin.write("grow 400\n")
        target.process.stdin.flush()
        check(target.process.wait(timeout=30) == -signal.SIGKILL, "OOM-killed")
        row = wait_until(lambda: (row_of(directory, target.pid) or {}).get("state") == "killed" and
                         row_of(directory, target.pid), "killed in top")
        time.sleep(0.3)
        document = json.loads(doctor("--json"))
        detail = [c for c in document["cgroups"] if c["version"] == cgroup.version][0]
        check(detail["oom_kills"] is None or detail["oom_kills"] >= 1, "OOM kill counted", detail)
        monitor.send_signal(signal.SIGINT)
        check(monitor.wait(timeout=10) == 0, "monitor ends on SIGINT")
        monitor_out.seek(0)
        out = monitor_out.read()
        changes = re.findall(rf"ALERT pid {target.pid} (\w+) -> (\w+)", out)
        # Up through every level, back to normal when it shrank (at once, or through the levels in between when a
        # sample lands while the memory is being freed), up again to the kill.
        check(changes[:3] == [("normal", "warning"), ("warning", "severe"), ("severe", "danger")]
              and any(after == "normal" for _, after in changes[3:]), "every change stands out", changes, out)
        check(f"ENDED pid {target.pid} killed" in out, "the OOM kill stands out", out)
        with open(csv_path) as source:
            check(sum(1 for row in csv.reader(source) if row[14] == "1") >= 4, "changes in the CSV")
    finally:
        for target in scratch.targets:
            target.close()
        cgroup.remove()


CASES = {name[len("case_"):]: function for name, function in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    for flag in ("--cli", "--preload", "--target", "--forge", "--fake-nvml-dir", "--golden"):
        parser.add_argument(flag, required=True)
    ARGS = parser.parse_args()
    scratch = Scratch()
    try:
        CASES[ARGS.case](scratch)
    except Skip as skip:
        print(f"SKIPPED outside.{ARGS.case}: {skip}")
        return SKIP
    except Failure as failure:
        print(f"FAIL outside.{ARGS.case}: {failure}")
        return 1
    finally:
        scratch.close()
    print(f"passed outside.{ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

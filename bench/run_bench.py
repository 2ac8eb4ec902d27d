"""The benchmark driver behind scripts/bench (which builds the project, then runs this with Debian's python3).

Runs every workload plain, under libmemtide.so (counting only: LD_PRELOAD, no MEMTIDE_* options) and under
heaptrack (recording only: `heaptrack -r`, no interpretation), alternating the three configurations within
each repetition, and prints median times and the median of the per-repetition ratios to plain, next to the
targets of the overhead issue. A missed target is printed as MISS, never turned into a failure: this machine
is noisy and speed is judged from ratios measured in the same run, not by assertions. The exit status is
non-zero only when something crashed (a workload failed, the preload did not load).

Workloads:
  malloc micro, 1 and 2 threads   bench/malloc_micro.cc; its own timer (the allocation loop only)
  python3 alloc_heavy.py          bench/alloc_heavy.py under /usr/bin/python3; wall time of the process
  g++ -O1 -c compile_input.cc     driver, cc1plus and as; wall time
  spawn /bin/true, sh -c true     bench/spawn_loop.c, 1000 posix_spawn+wait; the preload is in the children's
                                  environment only; heaptrack is skipped (see SPAWN_HEAPTRACK_NOTE)
  RSS                             malloc micro, 1 thread, plain vs memtide, max RSS from wait4
  fragmentation                   bench/fragmentation.c: fill a few hundred MB of mixed blocks pinned by
                                  long-lived small ones, free most, hold; RSS after the frees and at the end
                                  of the hold under glibc (plain, MALLOC_TRIM_THRESHOLD_=10000, the program's
                                  own malloc_trim(0) as the floor), mimalloc, jemalloc and tcmalloc, each
                                  plain and with libmemtide.so stacked first; one run per row
  trim cost                       malloc micro, memtide's default policy vs MEMTIDE_TRIM=0, alternating
  idle thread                     every workload but the spawn loops also runs with bench/idle_thread.c
                                  preloaded instead (one extra thread, nothing else): in a single-threaded
                                  program glibc's malloc takes its arena locks once a second thread exists, as
                                  it does under memtide's monitor thread, so that ratio is the part of
                                  memtide's that any in-process monitor thread costs
  tracing                         malloc micro (1 and 2 threads), python3 and g++: plain, MEMTIDE_TRACE=sample,
                                  MEMTIDE_TRACE=full (and again with MEMTIDE_TRACE_FAST_UNWIND=0: every stack
                                  from libunwind; and with MEMTIDE_TRACE_BOOKKEEPING_THREAD=0: the tables kept
                                  on the program's threads) and heaptrack -r, alternating (recording only for both:
                                  no trace file, no leak text); memory per live allocation in full mode from
                                  bench/live_blocks.c (1M live 32-byte blocks, max RSS full minus off)
  leak report                     g++ under MEMTIDE_TRACE=full with the leak text printed at exit (plain
                                  LD_PRELOAD's default) vs without it (MEMTIDE_LEAK_TOP=0), alternating: what
                                  symbolizing and grouping cc1plus's ~22,000 leaked stacks in the process
                                  costs in wall time and peak RSS; and the same for a short malloc micro run
                                  that frees everything (only the C runtime's blocks are left: no text, and
                                  what deciding that costs each traced process's exit); no target, a guard
                                  against regressions
"""

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
PLAIN, MEMTIDE, HEAPTRACK = "plain", "memtide", "heaptrack"
IDLE_THREAD = "idle-thread"  # plain with bench/idle_thread.c preloaded: one more thread, no hooks
SAMPLE, FULL = "sample", "full"  # memtide with MEMTIDE_TRACE=sample / full (the tracing section)
FULL_LIBUNWIND = "full-libunwind"  # full with every stack from libunwind (MEMTIDE_TRACE_FAST_UNWIND=0)
FULL_IN_PLACE = "full-in-place"  # full with the tables on the program's threads (no bookkeeping thread)
FULL_LEAK_TEXT = "full-leak-text"  # full with the leak text at exit, as plain LD_PRELOAD prints it
TRACE_ENV = {SAMPLE: {"MEMTIDE_TRACE": "sample", "MEMTIDE_LEAK_TOP": "0"},
             FULL: {"MEMTIDE_TRACE": "full", "MEMTIDE_LEAK_TOP": "0"},
             FULL_LIBUNWIND: {"MEMTIDE_TRACE": "full", "MEMTIDE_LEAK_TOP": "0", "MEMTIDE_TRACE_FAST_UNWIND": "0"},
             FULL_IN_PLACE: {"MEMTIDE_TRACE": "full", "MEMTIDE_LEAK_TOP": "0", "MEMTIDE_TRACE_BOOKKEEPING_THREAD": "0"},
             FULL_LEAK_TEXT: {"MEMTIDE_TRACE": "full"}}
SAMPLE_MICRO_TARGET, SAMPLE_REAL_TARGET = 1.10, 1.05  # sample mode / plain
FULL_VS_HEAPTRACK_TARGET = 3.0                       # heaptrack -r time / full mode time, at least
FULL_BYTES_PER_LIVE_TARGET = 64
LIVE_BLOCKS = 1000000
CONFIGS = (PLAIN, MEMTIDE, HEAPTRACK)
MICRO_OPS = 8000000  # steps per thread: about 0.6 s per thread plain on the 2-core CI machine
SPAWN_COUNT = 1000
MIB = 1024.0 * 1024.0
RSS_TARGET_BYTES = 2 * 1024 * 1024  # "RSS overhead under 2 MiB plus the segment"
# The trim benchmark (DESIGN.md decision 5). Allocators are Debian's packages, stacked after memtide the way
# `memtide run --allocator NAME` does it: LD_PRELOAD="libmemtide.so <allocator>".
ALLOCATOR_LIBRARIES = {
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
ALLOCATOR_FOLDERS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib")
MIMALLOC_RUN_ENV = {"MIMALLOC_PAGE_RESET": "1", "MIMALLOC_RESET_DECOMMITS": "1", "MIMALLOC_RESET_DELAY": "0"}
FRAG_FLOOR_FACTOR = 1.05                  # memtide on glibc: at most 1.05x the floor ...
FRAG_FLOOR_SLACK_BYTES = 2 * 1024 * 1024  # ... + 2 MiB
FRAG_PLAIN_SLACK_BYTES = 2 * 1024 * 1024  # "never worse than plain": memtide's own RSS target (2 MiB)
TRIM_COST_TARGET = 1.02                   # memtide default / memtide MEMTIDE_TRIM=0, CPU time
SPAWN_HEAPTRACK_NOTE = ("heaptrack skipped for the spawn loops: it starts every process through a bash "
                        "script, a fifo and a compressor, which is not what this loop measures")
GXX_HEAPTRACK_NOTE = ("g++ under heaptrack: `g++ -wrapper heaptrack,-r,...` so that cc1plus and as are "
                      "recorded (heaptrack does not follow children); memtide's LD_PRELOAD covers driver too")


class BenchError(Exception):
    """A workload crashed or produced no result: the run is invalid, not merely slow."""


@dataclasses.dataclass
class Workload:
    name: str
    argv: list            # the plain command
    target: float         # the largest acceptable memtide/plain ratio
    self_timed: bool      # True: the program prints "elapsed_s S"; False: wall time of the process
    heaptrack: bool = True
    spawn_loop: bool = False  # argv is spawn_loop's; the preload goes to its children via --preload
    gxx: bool = False         # heaptrack goes in through g++ -wrapper
    leaves_leaks: bool = True  # the leak report section expects a leak text at exit


@dataclasses.dataclass
class RunResult:
    seconds: float
    cpu_seconds: float  # user + system of the process and the children it waited for (wait4)
    maxrss_bytes: int
    stdout: str = ""
    stderr: str = ""


class Runner:
    """Runs one command in one configuration and measures it. Owns the scratch directories."""

    def __init__(self, preload, heaptrack, scratch, cli=None, idle_thread=None):
        self.preload = preload
        self.idle_thread = idle_thread
        self.cli = cli  # the memtide CLI, to read kept segments (None: not built)
        self.heaptrack = heaptrack
        self.scratch = scratch
        self.segment_dir = os.path.join(scratch, "segments")
        self.heaptrack_dir = os.path.join(scratch, "heaptrack")
        self.work_dir = os.path.join(scratch, "work")
        for path in (self.segment_dir, self.heaptrack_dir, self.work_dir):
            os.makedirs(path, exist_ok=True)
        # Every configuration starts from the same environment, without any preload or memtide option of the
        # caller's, so "plain" is plain and "memtide" is counting only.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("MEMTIDE_")}
        env["PYTHONHASHSEED"] = "0"  # alloc_heavy.py makes the same dicts in every run
        env["MEMTIDE_DIR"] = self.segment_dir  # harmless when the preload is absent; keeps /dev/shm clean
        self.base_env = env

    def command(self, workload, config, extra_env=None):
        argv = list(workload.argv)
        env = dict(self.base_env)
        if config in TRACE_ENV:
            env["LD_PRELOAD"] = self.preload
            env.update(TRACE_ENV[config])
        elif config == MEMTIDE:
            if workload.spawn_loop:
                argv[2:2] = ["--preload", self.preload]  # after "spawn_loop COUNT"
            else:
                env["LD_PRELOAD"] = self.preload
        elif config == IDLE_THREAD:
            env["LD_PRELOAD"] = self.idle_thread
        elif config == HEAPTRACK:
            output = os.path.join(self.heaptrack_dir, "run")
            if workload.gxx:
                argv[1:1] = ["-wrapper", f"{self.heaptrack},-r,-o,{output}"]
            else:
                argv = [self.heaptrack, "-r", "-o", output] + argv
        env.update(extra_env or {})
        env = {k: v for k, v in env.items() if v is not None}  # None in extra_env removes the variable
        return argv, env

    def run(self, workload, config, extra_env=None):
        argv, env = self.command(workload, config, extra_env)
        out_path = os.path.join(self.scratch, "stdout")
        err_path = os.path.join(self.scratch, "stderr")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out_path, flags, 0o600),
            (os.POSIX_SPAWN_OPEN, 2, err_path, flags, 0o600),
        ]
        cwd = os.getcwd()
        os.chdir(self.work_dir)  # g++ writes its object file here, inside the scratch folder
        try:
            start = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
            _, status, usage = os.wait4(pid, 0)
            wall = time.perf_counter() - start
        finally:
            os.chdir(cwd)
        with open(out_path, errors="replace") as f:
            stdout = f.read()
        with open(err_path, errors="replace") as f:
            stderr = f.read()
        shutil.rmtree(self.heaptrack_dir, ignore_errors=True)
        os.makedirs(self.heaptrack_dir, exist_ok=True)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise BenchError(f"{workload.name} [{config}] exited with {code}: {' '.join(argv)}\n"
                             f"{stderr[-2000:]}")
        if config in (MEMTIDE, SAMPLE, FULL, FULL_LIBUNWIND, FULL_IN_PLACE, FULL_LEAK_TEXT) and "cannot be preloaded" in stderr:
            raise BenchError(f"{workload.name} [memtide]: the preload did not load:\n{stderr[-2000:]}")
        seconds = wall
        if workload.self_timed:
            seconds = None
            for line in stdout.splitlines():
                if line.startswith("elapsed_s "):
                    seconds = float(line.split()[1])
            if seconds is None:
                raise BenchError(f"{workload.name} [{config}] printed no elapsed_s line:\n{stdout[-2000:]}")
        return RunResult(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,
                         maxrss_bytes=usage.ru_maxrss * 1024, stdout=stdout, stderr=stderr)

    def leftover_segments(self):
        return sorted(os.listdir(self.segment_dir))


def rotated(configs, rep):
    """plain, memtide, heaptrack; then memtide, heaptrack, plain; ...: no configuration always runs first
    (right after another workload, or on a cold cache) or always last."""
    shift = rep % len(configs)
    return configs[shift:] + configs[:shift]


def measure(runner, workload, configs, reps, log):
    runner.run(workload, PLAIN)  # warm-up, not counted: page cache, dynamic linker cache, CPU frequency
    samples = {config: [] for config in configs}
    cpu = {config: [] for config in configs}
    for rep in range(reps):
        for config in rotated(list(configs), rep):
            result = runner.run(workload, config)
            samples[config].append(result.seconds)
            cpu[config].append(result.cpu_seconds)
        log(f"  {workload.name}: rep {rep + 1}/{reps}: " +
            ", ".join(f"{c} {samples[c][-1]:.3f}s (cpu {cpu[c][-1]:.3f}s)" for c in configs))
    return samples, cpu


def paired_ratio(samples, config):
    """Median over repetitions of config/plain within the same repetition (the runs sat next to each other)."""
    return statistics.median(t / p for t, p in zip(samples[config], samples[PLAIN]))


def check_preload(runner, micro, log):
    """Runs a short micro-benchmark under the preload with MEMTIDE_KEEP_SEGMENT=1: a segment file must appear,
    otherwise the "memtide" numbers would be plain numbers in disguise. Returns the segment file's size."""
    short = dataclasses.replace(micro, argv=micro.argv[:1] + ["--ops", "200000"])
    before = set(runner.leftover_segments())
    runner.run(short, MEMTIDE, {"MEMTIDE_KEEP_SEGMENT": "1"})
    new = [name for name in runner.leftover_segments() if name not in before]
    if not new:
        raise BenchError(f"no segment file appeared in {runner.segment_dir} with MEMTIDE_KEEP_SEGMENT=1: "
                         "is libmemtide.so active?")
    size = 0
    for name in new:
        path = os.path.join(runner.segment_dir, name)
        size = max(size, os.path.getsize(path))
        os.unlink(path)
    log(f"preload check: segment file {new[0]} ({size} bytes) kept as asked")
    return size


def measure_rss(runner, micro, reps, segment_bytes, log):
    plain, traced = [], []
    runner.run(micro, PLAIN)
    for rep in range(reps):
        for config in rotated([PLAIN, MEMTIDE], rep):
            (plain if config == PLAIN else traced).append(runner.run(micro, config).maxrss_bytes)
    plain_rss, traced_rss = statistics.median(plain), statistics.median(traced)
    overhead = traced_rss - plain_rss
    page = os.sysconf("SC_PAGE_SIZE")
    segment_pages = -(-segment_bytes // page) * page
    limit = RSS_TARGET_BYTES + segment_pages
    log(f"  rss: plain {[b // 1024 for b in plain]} KiB, memtide {[b // 1024 for b in traced]} KiB")
    return {"plain_bytes": plain_rss, "memtide_bytes": traced_rss, "overhead_bytes": overhead,
            "segment_bytes": segment_bytes, "limit_bytes": limit, "pass": overhead < limit}


def fmt_ratio(value):
    return f"{value:.3f}x" if value is not None else "-"


def print_table(rows, rss, notes):
    header = ["workload", "plain (s)", "idle thread", "memtide (s)", "ratio", "heaptrack (s)", "ratio", "target", "result",
              "plain spread", "memtide cpu ratio"]
    lines = []
    for row in rows:
        lines.append([
            row["workload"], f"{row['plain_s']:.3f}", fmt_ratio(row["idle_thread_ratio"]),
            f"{row['memtide_s']:.3f}", fmt_ratio(row["memtide_ratio"]),
            f"{row['heaptrack_s']:.3f}" if row["heaptrack_s"] is not None else "skipped",
            fmt_ratio(row["heaptrack_ratio"]), f"<= {row['target']:.2f}x", "PASS" if row["pass"] else "MISS",
            f"{row['plain_spread'] * 100:.1f}%", fmt_ratio(row["memtide_cpu_ratio"]),
        ])
    widths = [max(len(str(r[i])) for r in [header] + lines) for i in range(len(header))]

    def emit(cells):
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))).rstrip())

    emit(header)
    print("  ".join("-" * w for w in widths))
    for line in lines:
        emit(line)
    if rss is not None:
        print()
        print(f"RSS (malloc micro, 1 thread, median max RSS): plain {rss['plain_bytes'] / MIB:.2f} MiB, "
              f"memtide {rss['memtide_bytes'] / MIB:.2f} MiB, overhead {rss['overhead_bytes'] / MIB:+.2f} MiB; "
              f"target < 2 MiB + segment ({rss['segment_bytes']} B) = {rss['limit_bytes'] / MIB:.2f} MiB: "
              f"{'PASS' if rss['pass'] else 'MISS'}")
    print()
    for note in notes:
        print(f"note: {note}")


def find_allocator(name):
    """Path of Debian's shared library for allocator `name`, or None when it is not installed."""
    library = ALLOCATOR_LIBRARIES[name][0]
    for folder in ALLOCATOR_FOLDERS:
        path = os.path.join(folder, library)
        if os.path.exists(path):
            return path
    return None


@dataclasses.dataclass
class FragRow:
    name: str
    allocator: str        # "glibc", "mimalloc", ...
    memtide: bool = False
    floor: bool = False   # the program calls malloc_trim(0) itself after its frees
    env: dict = dataclasses.field(default_factory=dict)
    baseline: str = None  # memtide rows: the row it must never be worse than


def parse_key_values(text):
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return values


def segment_policy(runner, cli, before):
    """The trim section of the segment a memtide run kept (MEMTIDE_KEEP_SEGMENT=1), read with `memtide show
    --json`; removes the file. None when there is no CLI or no new segment."""
    new = [name for name in runner.leftover_segments() if name not in before]
    info = None
    for name in new:
        path = os.path.join(runner.segment_dir, name)
        if cli is not None and info is None:
            pid = name.split(".")[1]
            out = subprocess.run([cli, "show", "--dir", runner.segment_dir, pid, "--json"],
                                 capture_output=True, text=True, check=False)
            if out.returncode == 0:
                info = json.loads(out.stdout)
        os.unlink(path)
    return info


def measure_fragmentation(runner, program, total_mib, hold_ms, log, notes):
    """One run per row, in a fixed order (each allocator without memtide, then with it). Returns the rows and
    the target checks as (text, passed) pairs."""
    # Every row starts without the caller's allocator tuning, so "plain" is each allocator's default.
    clean = {k: None for k in os.environ
             if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "MIMALLOC_", "TCMALLOC_"))}
    rows = [
        FragRow("glibc", "glibc"),
        FragRow("glibc, MALLOC_TRIM_THRESHOLD_=10000", "glibc", env={"MALLOC_TRIM_THRESHOLD_": "10000"}),
        FragRow("glibc, malloc_trim(0) after the frees (floor)", "glibc", floor=True),
        FragRow("memtide on glibc", "glibc", memtide=True, baseline="glibc"),
    ]
    for name in ALLOCATOR_LIBRARIES:
        rows += [FragRow(name, name), FragRow(f"memtide on {name}", name, memtide=True, baseline=name)]
        if name == "mimalloc":
            # What `memtide run --allocator mimalloc` adds to the environment (viewer/run_command.cc), since
            # mi_collect() on memtide's thread cannot collect the program's threads' heaps.
            env = dict(MIMALLOC_RUN_ENV)
            label = "mimalloc, memtide run's MIMALLOC_* settings"
            rows += [FragRow(label, name, env=env),
                     FragRow(f"memtide on {label}", name, memtide=True, env=env, baseline=label)]
    workload = Workload("fragmentation", [program, "--total-mib", str(total_mib), "--hold-ms", str(hold_ms)],
                        0.0, False)
    results = []
    for row in rows:
        library = None
        if row.allocator != "glibc":
            library = find_allocator(row.allocator)
            if library is None:
                library_name, package = ALLOCATOR_LIBRARIES[row.allocator]
                note = f"{row.allocator} rows skipped: {library_name} is not installed (apt-get install {package})"
                if note not in notes:
                    notes.append(note)
                continue
        preload = [runner.preload] if row.memtide else []
        preload += [library] if library else []
        env = dict(clean)
        env.update(row.env)
        env["LD_PRELOAD"] = " ".join(preload) if preload else None
        if row.memtide:
            env["MEMTIDE_KEEP_SEGMENT"] = "1"
        argv = workload.argv + (["--trim"] if row.floor else [])
        before = set(runner.leftover_segments())
        result = runner.run(dataclasses.replace(workload, name=row.name, argv=argv), PLAIN, env)
        if "cannot be preloaded" in result.stderr or "ERROR: ld.so" in result.stderr:
            raise BenchError(f"fragmentation [{row.name}]: a preload did not load:\n{result.stderr[-2000:]}")
        values = parse_key_values(result.stdout)
        if "rss_end_bytes" not in values:
            raise BenchError(f"fragmentation [{row.name}] printed no rss_end_bytes:\n{result.stdout[-2000:]}")
        policy = segment_policy(runner, runner.cli, before) if row.memtide else None
        if row.memtide and policy is not None and policy.get("allocator") != row.allocator:
            raise BenchError(f"fragmentation [{row.name}]: memtide detected allocator "
                             f"{policy.get('allocator')!r}, expected {row.allocator!r}")
        entry = {"name": row.name, "allocator": row.allocator, "memtide": row.memtide, "floor": row.floor,
                 "baseline": row.baseline, "env": row.env,
                 "wall_s": result.seconds, "cpu_s": result.cpu_seconds, **values}
        if policy is not None:
            entry["trim"] = policy.get("trim")
        results.append(entry)
        trim = entry.get("trim") or {}
        log(f"  fragmentation: {row.name}: after free {values['rss_after_free_bytes'] / MIB:.1f} MiB, "
            f"end {values['rss_end_bytes'] / MIB:.1f} MiB, live {values['live_bytes'] / MIB:.1f} MiB"
            + (f", trims {trim.get('trims')} in {trim.get('time_s', 0):.2f} s" if trim else ""))

    # Targets: memtide on glibc near the floor; memtide never worse than the same allocator plain.
    by_name = {r["name"]: r for r in results}
    floor = next((r for r in results if r["floor"]), None)
    checks = []
    for r in results:
        plain = by_name.get(r.get("baseline"))
        if r["memtide"] and plain is not None:
            r["vs_plain"] = r["rss_end_bytes"] / plain["rss_end_bytes"]
            r["pass_plain"] = r["rss_end_bytes"] <= plain["rss_end_bytes"] + FRAG_PLAIN_SLACK_BYTES
            checks.append((f"{r['name']} never worse than without memtide: {r['rss_end_bytes'] / MIB:.1f} MiB "
                           f"<= {plain['rss_end_bytes'] / MIB:.1f} MiB + 2 MiB", r["pass_plain"]))
    mg = by_name.get("memtide on glibc")
    if mg is not None and floor is not None:
        limit = FRAG_FLOOR_FACTOR * floor["rss_end_bytes"] + FRAG_FLOOR_SLACK_BYTES
        mg["pass_floor"] = mg["rss_end_bytes"] <= limit
        checks.insert(0, (f"memtide on glibc within 1.05x the floor + 2 MiB: {mg['rss_end_bytes'] / MIB:.1f} MiB "
                          f"<= 1.05 x {floor['rss_end_bytes'] / MIB:.1f} + 2 = {limit / MIB:.1f} MiB",
                          mg["pass_floor"]))
    return results, checks


def print_fragmentation(results, checks, total_mib, hold_ms):
    print(f"Fragmentation: {total_mib} MiB of mixed blocks pinned by long-lived small ones, most freed, then held "
          f"{hold_ms / 1000:.1f} s; one run per row")
    header = ["configuration", "after free (MiB)", "end of hold (MiB)", "live (MiB)", "end/live", "vs plain",
              "settle (s)", "trims (s)", "free (s)"]
    lines = []
    for r in results:
        trim = r.get("trim") or {}
        trims = "-"
        if r["floor"]:
            trims = f"1 ({r['trim_s']:.2f})"
        elif trim:
            trims = f"{trim.get('trims', 0)} ({trim.get('time_s', 0):.2f})"
        lines.append([
            r["name"], f"{r['rss_after_free_bytes'] / MIB:.1f}", f"{r['rss_end_bytes'] / MIB:.1f}",
            f"{r['live_bytes'] / MIB:.1f}", f"{r['rss_end_bytes'] / r['live_bytes']:.1f}x",
            fmt_ratio(r.get("vs_plain")), f"{r['settle_s']:.2f}", trims, f"{r['free_s']:.2f}",
        ])
    widths = [max(len(str(row[i])) for row in [header] + lines) for i in range(len(header))]
    for cells in [header, ["-" * w for w in widths]] + lines:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    print()


def measure_trim_cost(runner, micro_path, threads, reps, log):
    """malloc micro under memtide with its default policy vs MEMTIDE_TRIM=0, alternating in each repetition.
    Returns the row (median ratios of CPU time and of the program's own time)."""
    workload = Workload(f"trim cost, malloc micro, {threads} thread{'s' if threads > 1 else ''}",
                        [micro_path, "--ops", str(MICRO_OPS), "--threads", str(threads)], TRIM_COST_TARGET, True)
    # Both keep their segment (that changes nothing before exit), so each run's trims can be read back.
    configs = {"default": {"MEMTIDE_TRIM": None, "MEMTIDE_KEEP_SEGMENT": "1"},
               "off": {"MEMTIDE_TRIM": "0", "MEMTIDE_KEEP_SEGMENT": "1"}}
    samples = {name: [] for name in configs}
    cpu = {name: [] for name in configs}
    trims, trim_seconds = [], []
    before = set(runner.leftover_segments())
    runner.run(workload, MEMTIDE, configs["off"])  # warm-up
    segment_policy(runner, None, before)
    for rep in range(reps):
        for name in rotated(list(configs), rep):
            before = set(runner.leftover_segments())
            result = runner.run(workload, MEMTIDE, configs[name])
            info = segment_policy(runner, runner.cli, before)
            samples[name].append(result.seconds)
            cpu[name].append(result.cpu_seconds)
            if name == "default" and info is not None:
                trims.append(info["trim"]["trims"])
                trim_seconds.append(info["trim"]["time_s"])
        log(f"  {workload.name}: rep {rep + 1}/{reps}: " +
            ", ".join(f"{n} {samples[n][-1]:.3f}s (cpu {cpu[n][-1]:.3f}s)" for n in configs) +
            (f", default trims {trims[-1]} ({trim_seconds[-1]:.3f} s)" if trims else ""))

    def ratio(values):
        return statistics.median(a / b for a, b in zip(values["default"], values["off"]))

    row = {"workload": workload.name, "target": TRIM_COST_TARGET, "samples": samples, "cpu_samples": cpu,
           "default_s": statistics.median(samples["default"]), "off_s": statistics.median(samples["off"]),
           "default_cpu_s": statistics.median(cpu["default"]), "off_cpu_s": statistics.median(cpu["off"]),
           "cpu_ratio": ratio(cpu), "time_ratio": ratio(samples),
           "trims_per_run": statistics.mean(trims) if trims else None,
           "trim_s_per_run": statistics.mean(trim_seconds) if trim_seconds else None}
    row["pass"] = row["cpu_ratio"] <= TRIM_COST_TARGET
    return row


def print_trim_cost(rows):
    print("Trim policy cost: memtide (default policy) vs memtide with MEMTIDE_TRIM=0, alternating, same run")
    header = ["workload", "trim=0 cpu (s)", "default cpu (s)", "cpu ratio", "trim=0 (s)", "default (s)",
              "time ratio", "trims/run (s)", "target", "result"]
    lines = [[r["workload"], f"{r['off_cpu_s']:.3f}", f"{r['default_cpu_s']:.3f}", fmt_ratio(r["cpu_ratio"]),
              f"{r['off_s']:.3f}", f"{r['default_s']:.3f}", fmt_ratio(r["time_ratio"]),
              f"{r['trims_per_run']:.1f} ({r['trim_s_per_run']:.3f})" if r["trims_per_run"] is not None else "-",
              f"<= {r['target']:.2f}x", "PASS" if r["pass"] else "MISS"] for r in rows]
    widths = [max(len(str(row[i])) for row in [header] + lines) for i in range(len(header))]
    for cells in [header, ["-" * w for w in widths]] + lines:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    print()


def measure_tracing(runner, workloads, heaptrack, live_blocks, reps, log):
    """Sample and full tracing next to plain and heaptrack, same run, alternating. Returns rows and the
    memory-per-live-allocation measurement."""
    rows = []
    for workload in workloads:
        configs = [PLAIN, IDLE_THREAD, SAMPLE, FULL, FULL_LIBUNWIND, FULL_IN_PLACE] + ([HEAPTRACK] if heaptrack and workload.heaptrack else [])
        samples, cpu = measure(runner, workload, configs, reps, log)
        micro = workload.self_timed
        row = {"workload": workload.name, "samples": samples, "cpu_samples": cpu,
               "plain_s": statistics.median(samples[PLAIN]),
               "sample_s": statistics.median(samples[SAMPLE]), "full_s": statistics.median(samples[FULL]),
               "sample_ratio": paired_ratio(samples, SAMPLE), "full_ratio": paired_ratio(samples, FULL),
               "idle_thread_ratio": paired_ratio(samples, IDLE_THREAD),
               "sample_target": SAMPLE_MICRO_TARGET if micro else SAMPLE_REAL_TARGET,
               "heaptrack_s": statistics.median(samples[HEAPTRACK]) if HEAPTRACK in samples else None,
               "heaptrack_ratio": paired_ratio(samples, HEAPTRACK) if HEAPTRACK in samples else None}
        row["heaptrack_over_full"] = (statistics.median(h / f for h, f in zip(samples[HEAPTRACK], samples[FULL]))
                                      if HEAPTRACK in samples else None)
        row["sample_pass"] = row["sample_ratio"] <= row["sample_target"]
        row["full_pass"] = (row["heaptrack_over_full"] >= FULL_VS_HEAPTRACK_TARGET
                            if row["heaptrack_over_full"] is not None else None)
        row["plain_spread"] = (max(samples[PLAIN]) - min(samples[PLAIN])) / row["plain_s"]
        # What the cached-rule stack walk saves, same run: full mode's time with libunwind alone over its own.
        row["libunwind_s"] = statistics.median(samples[FULL_LIBUNWIND])
        row["libunwind_over_full"] = statistics.median(u / f for u, f in zip(samples[FULL_LIBUNWIND], samples[FULL]))
        # What the bookkeeping thread saves, same run: full mode's time with the tables in place over its own.
        row["in_place_s"] = statistics.median(samples[FULL_IN_PLACE])
        row["in_place_over_full"] = statistics.median(p / f for p, f in zip(samples[FULL_IN_PLACE], samples[FULL]))
        rows.append(row)
    memory = None
    if live_blocks is not None:
        workload = Workload("live blocks", [live_blocks, "--blocks", str(LIVE_BLOCKS), "--size", "32"], 0, False)
        off, full = [], []
        runner.run(workload, MEMTIDE)
        for rep in range(reps):
            for config in rotated([MEMTIDE, FULL], rep):
                (off if config == MEMTIDE else full).append(runner.run(workload, config).maxrss_bytes)
        per_block = (statistics.median(full) - statistics.median(off)) / LIVE_BLOCKS
        log(f"  live blocks: off {[b // 1024 for b in off]} KiB, full {[b // 1024 for b in full]} KiB")
        memory = {"off_bytes": statistics.median(off), "full_bytes": statistics.median(full),
                  "bytes_per_live_block": per_block, "target": FULL_BYTES_PER_LIVE_TARGET,
                  "pass": per_block <= FULL_BYTES_PER_LIVE_TARGET}
    return rows, memory


def measure_leak_report(runner, workload, reps, log):
    """Full mode with and without the leak text at exit, alternating: its time and peak RSS, same run."""
    runner.run(workload, FULL)  # warm-up
    runs = {FULL: [], FULL_LEAK_TEXT: []}
    for rep in range(reps):
        for config in rotated([FULL, FULL_LEAK_TEXT], rep):
            result = runner.run(workload, config)
            if config == FULL_LEAK_TEXT and ("SUMMARY: " in result.stderr) != workload.leaves_leaks:
                raise BenchError(f"{workload.name} [{config}]: " +
                                 ("no leak text" if workload.leaves_leaks else "a leak text") +
                                 f" at exit:\n{result.stderr[-2000:]}")
            runs[config].append(result)
        log(f"  leak report, {workload.name}: rep {rep + 1}/{reps}: " +
            ", ".join(f"{c} {runs[c][-1].seconds:.3f}s {runs[c][-1].maxrss_bytes // MIB} MiB" for c in runs))
    seconds = {c: [r.seconds for r in runs[c]] for c in runs}
    rss = {c: [r.maxrss_bytes for r in runs[c]] for c in runs}
    return {"workload": workload.name, "leaves_leaks": workload.leaves_leaks,
            "full_s": statistics.median(seconds[FULL]),
            "leak_text_s": statistics.median(seconds[FULL_LEAK_TEXT]),
            "time_ratio": statistics.median(t / f for t, f in zip(seconds[FULL_LEAK_TEXT], seconds[FULL])),
            "full_rss_bytes": statistics.median(rss[FULL]),
            "leak_text_rss_bytes": statistics.median(rss[FULL_LEAK_TEXT])}


def print_leak_report(row):
    added = row["leak_text_rss_bytes"] - row["full_rss_bytes"]
    print(f"Leak report at exit ({row['workload']}, MEMTIDE_TRACE=full, alternating, same run): without the "
          f"text {row['full_s']:.3f} s, {row['full_rss_bytes'] / MIB:.0f} MiB peak RSS; with it "
          f"{row['leak_text_s']:.3f} s ({fmt_ratio(row['time_ratio'])}), "
          f"{row['leak_text_rss_bytes'] / MIB:.0f} MiB ({added / MIB:+.0f} MiB)" +
          ("" if row["leaves_leaks"] else "; no text printed: only the C runtime's blocks were left"))
    print()


def print_tracing(rows, memory):
    print("Tracing: memtide MEMTIDE_TRACE=sample and =full vs plain and heaptrack -r, alternating, same run; "
          "libunwind: full with MEMTIDE_TRACE_FAST_UNWIND=0; in place: full with MEMTIDE_TRACE_BOOKKEEPING_THREAD=0")
    header = ["workload", "plain (s)", "idle thread", "sample (s)", "ratio", "target", "result", "full (s)", "ratio",
              "heaptrack (s)", "ratio", "heaptrack/full", "target", "result", "libunwind (s)", "libunwind/full",
              "in place (s)", "in place/full", "plain spread"]
    lines = []
    for r in rows:
        lines.append([r["workload"], f"{r['plain_s']:.3f}", fmt_ratio(r["idle_thread_ratio"]),
                      f"{r['sample_s']:.3f}", fmt_ratio(r["sample_ratio"]),
                      f"<= {r['sample_target']:.2f}x", "PASS" if r["sample_pass"] else "MISS",
                      f"{r['full_s']:.3f}", fmt_ratio(r["full_ratio"]),
                      f"{r['heaptrack_s']:.3f}" if r["heaptrack_s"] is not None else "skipped",
                      fmt_ratio(r["heaptrack_ratio"]), fmt_ratio(r["heaptrack_over_full"]),
                      f">= {FULL_VS_HEAPTRACK_TARGET:.1f}x",
                      "-" if r["full_pass"] is None else ("PASS" if r["full_pass"] else "MISS"),
                      f"{r['libunwind_s']:.3f}", fmt_ratio(r["libunwind_over_full"]),
                      f"{r['in_place_s']:.3f}", fmt_ratio(r["in_place_over_full"]),
                      f"{r['plain_spread'] * 100:.1f}%"])
    widths = [max(len(str(row[i])) for row in [header] + lines) for i in range(len(header))]
    for cells in [header, ["-" * w for w in widths]] + lines:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    if memory is not None:
        print()
        print(f"Full-mode memory ({LIVE_BLOCKS:,} live 32-byte blocks, median max RSS): tracing off "
              f"{memory['off_bytes'] / MIB:.1f} MiB, full {memory['full_bytes'] / MIB:.1f} MiB: "
              f"{memory['bytes_per_live_block']:.1f} bytes per live allocation (table + depot); target "
              f"<= {memory['target']}: {'PASS' if memory['pass'] else 'MISS'}")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="CMake build folder with lib/ and bench/")
    parser.add_argument("--reps", type=int, default=5, help="measured repetitions per configuration")
    parser.add_argument("--no-heaptrack", action="store_true", help="skip the heaptrack configuration")
    parser.add_argument("--only", action="append", default=[],
                        help="run only workloads whose name contains this text (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no per-repetition progress on stderr")
    parser.add_argument("--frag-mib", type=int, default=256, help="fragmentation: MiB allocated in the fill")
    parser.add_argument("--frag-hold-ms", type=int, default=5000,
                        help="fragmentation: how long the program holds after its frees")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    build = os.path.abspath(args.build_dir)
    preload = os.path.join(build, "lib", "libmemtide.so")
    micro = os.path.join(build, "bench", "malloc_micro")
    spawn = os.path.join(build, "bench", "spawn_loop")
    fragmentation = os.path.join(build, "bench", "fragmentation")
    live_blocks = os.path.join(build, "bench", "live_blocks")
    idle_thread = os.path.join(build, "bench", "libidle_thread.so")
    cli = os.path.join(build, "bin", "memtide")
    cli = cli if os.access(cli, os.X_OK) else None
    for path in (preload, micro, spawn, fragmentation, idle_thread):
        if not os.path.exists(path):
            print(f"bench: error: {path} is missing (build first, or check --build-dir)", file=sys.stderr)
            return 1
    heaptrack = None if args.no_heaptrack else shutil.which("heaptrack")
    notes = []
    if heaptrack is None:
        notes.append("heaptrack not run (" + ("--no-heaptrack" if args.no_heaptrack else "not installed") + ")")
    gxx, sh = shutil.which("g++"), shutil.which("sh") or "/bin/sh"

    micro1 = Workload("malloc micro, 1 thread", [micro, "--ops", str(MICRO_OPS), "--threads", "1"], 1.05, True)
    workloads = [
        micro1,
        Workload("malloc micro, 2 threads", [micro, "--ops", str(MICRO_OPS), "--threads", "2"], 1.05, True),
        Workload("python3 alloc_heavy.py", [PYTHON, os.path.join(BENCH_DIR, "alloc_heavy.py")], 1.02, False),
        Workload("g++ -O1 -c compile_input.cc",
                 [gxx, "-O1", "-c", os.path.join(BENCH_DIR, "compile_input.cc"), "-o", "compile_input.o"],
                 1.02, False, gxx=True),
        Workload(f"spawn /bin/true x{SPAWN_COUNT}", [spawn, str(SPAWN_COUNT), "--", "/bin/true"], 1.20, True,
                 heaptrack=False, spawn_loop=True),
        Workload(f"spawn sh -c true x{SPAWN_COUNT}", [spawn, str(SPAWN_COUNT), "--", sh, "-c", "true"], 1.20, True,
                 heaptrack=False, spawn_loop=True),
    ]
    def selected(name):
        return not args.only or any(text in name for text in args.only)

    workloads_before_selection = workloads
    workloads = [w for w in workloads if selected(w.name)]
    run_fragmentation = selected("fragmentation")
    trim_cost_threads = [t for t in (1, 2) if selected(f"trim cost, malloc micro, {t} thread")]
    all_workloads = workloads_before_selection
    tracing_workloads = [w for w in all_workloads if not w.spawn_loop and selected("tracing, " + w.name)]
    tracing_memory = selected("tracing, live blocks")
    frees_everything = Workload("malloc micro, 100,000 steps", [micro, "--ops", "100000"], 0.0, False,
                                heaptrack=False, leaves_leaks=False)
    leak_report_workloads = [w for w in all_workloads + [frees_everything]
                             if (w.gxx or not w.leaves_leaks) and selected("leak report, " + w.name)]

    configs_text = ", ".join(c for c in CONFIGS if c != HEAPTRACK or heaptrack) if workloads else "per section"
    print(f"memtide bench: {args.reps} repetitions, configurations alternating ({configs_text}), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"preload: {preload}")
    if heaptrack and workloads:
        print(f"heaptrack: {heaptrack} -r (record only)")
    print(flush=True)

    scratch = tempfile.mkdtemp(prefix="memtide-bench.", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    rows, rss, started = [], None, time.monotonic()
    trim_cost_rows, frag_results, frag_checks = [], None, []
    tracing_rows, tracing_mem = [], None
    leak_report_rows = []
    try:
        runner = Runner(preload, heaptrack, scratch, cli, idle_thread)
        segment_bytes = check_preload(runner, micro1, log)
        for workload in workloads:
            configs = ([PLAIN, MEMTIDE] + ([IDLE_THREAD] if not workload.spawn_loop else []) +
                       ([HEAPTRACK] if heaptrack and workload.heaptrack else []))
            samples, cpu = measure(runner, workload, configs, args.reps, log)
            row = {
                "workload": workload.name, "target": workload.target, "samples": samples,
                "plain_s": statistics.median(samples[PLAIN]), "memtide_s": statistics.median(samples[MEMTIDE]),
                "memtide_ratio": paired_ratio(samples, MEMTIDE),
                "idle_thread_ratio": paired_ratio(samples, IDLE_THREAD) if IDLE_THREAD in samples else None,
                # CPU time is blind to time spent waiting for a core, so it stays readable when other work
                # shares the machine; the targets are still judged on the time ratio.
                "cpu_samples": cpu, "memtide_cpu_ratio": paired_ratio(cpu, MEMTIDE),
                "heaptrack_s": statistics.median(samples[HEAPTRACK]) if HEAPTRACK in samples else None,
                "heaptrack_ratio": paired_ratio(samples, HEAPTRACK) if HEAPTRACK in samples else None,
            }
            row["pass"] = row["memtide_ratio"] <= workload.target
            # How far apart identical plain runs were: a ratio closer to its target than this is within noise.
            row["plain_spread"] = (max(samples[PLAIN]) - min(samples[PLAIN])) / row["plain_s"]
            rows.append(row)
        if micro1 in workloads or any("rss" in text.lower() for text in args.only):
            rss = measure_rss(runner, micro1, args.reps, segment_bytes, log)
        for threads in trim_cost_threads:
            trim_cost_rows.append(measure_trim_cost(runner, micro, threads, args.reps, log))
        if tracing_workloads or tracing_memory:
            tracer_module = os.path.join(build, "lib", "libmemtide_tracer.so")
            if not os.path.exists(tracer_module):
                raise BenchError(f"{tracer_module} is missing: the tracing section needs the tracer module")
            tracing_rows, tracing_mem = measure_tracing(runner, tracing_workloads, heaptrack,
                                                        live_blocks if tracing_memory else None, args.reps, log)
        for workload in leak_report_workloads:
            leak_report_rows.append(measure_leak_report(runner, workload, args.reps, log))
        if run_fragmentation:
            frag_results, frag_checks = measure_fragmentation(runner, fragmentation, args.frag_mib,
                                                              args.frag_hold_ms, log, notes)
        leftovers = runner.leftover_segments()
        if leftovers:
            notes.append(f"{len(leftovers)} segment file(s) left behind after exit (expected none): "
                         f"{', '.join(leftovers[:5])}")
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    if heaptrack and any(w.gxx for w in workloads):
        notes.append(GXX_HEAPTRACK_NOTE)
    if any(w.spawn_loop for w in workloads):
        notes.append(SPAWN_HEAPTRACK_NOTE)
    if rows:
        notes.append("times are medians; ratios are medians of the per-repetition ratios to plain; malloc micro "
                     "and spawn rows use the program's own timer, python3 and g++ the process's wall time")
        notes.append("plain spread is (max - min) / median of the plain runs: the noise floor to read a ratio "
                     "against")
        notes.append("memtide cpu ratio: the same median ratio for user+system CPU time of the whole process tree "
                     "(wait4); it ignores time spent waiting for a core, so it stays readable on a busy machine")
    if rows or tracing_rows:
        notes.append("idle thread: the ratio to plain of the same program with one extra thread that never runs "
                     "(bench/idle_thread.c); a single-threaded program pays it under any in-process monitor, "
                     "memtide's included, because glibc's malloc then takes its arena locks")
    if frag_results is not None:
        notes.append("fragmentation: RSS from the program's own /proc/self/statm; 'settle' is when RSS last moved "
                     "by more than 2% (or 1 MiB) of its end value after the frees; 'trims (s)' is memtide's trims "
                     "and the time they took (from the kept segment), or the program's own malloc_trim(0)")
        notes.append("fragmentation: 'never worse than plain' allows memtide's own RSS target of 2 MiB")
    if trim_cost_rows:
        notes.append("trim cost: judged on the CPU time of the whole process (wait4: user+system, the monitor "
                     "thread's trims included); the time ratio is the program's own timer; 'trims/run' is the "
                     "default policy's mean trims per run and their time (a row with 0 trims runs the same code "
                     "in both configurations, so its ratio is the noise floor)")
    notes.append(f"total bench time {time.monotonic() - started:.0f} s")
    if rows or rss is not None:
        print_table(rows, rss, [])
    if trim_cost_rows:
        print_trim_cost(trim_cost_rows)
    if tracing_rows or tracing_mem is not None:
        print_tracing(tracing_rows, tracing_mem)
    for row in leak_report_rows:
        print_leak_report(row)
    if frag_results is not None:
        print_fragmentation(frag_results, frag_checks, args.frag_mib, args.frag_hold_ms)
    for note in notes:
        print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reps": args.reps, "rows": rows, "rss": rss, "trim_cost": trim_cost_rows,
                       "fragmentation": frag_results, "tracing": tracing_rows, "tracing_memory": tracing_mem,
                       "leak_report": leak_report_rows,
                       "fragmentation_checks": [{"check": t, "pass": ok} for t, ok in frag_checks],
                       "notes": notes}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

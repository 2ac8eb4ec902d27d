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
"""

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
PLAIN, MEMTIDE, HEAPTRACK = "plain", "memtide", "heaptrack"
CONFIGS = (PLAIN, MEMTIDE, HEAPTRACK)
MICRO_OPS = 8000000  # steps per thread: about 0.6 s per thread plain on the 2-core CI machine
SPAWN_COUNT = 1000
MIB = 1024.0 * 1024.0
RSS_TARGET_BYTES = 2 * 1024 * 1024  # "RSS overhead under 2 MiB plus the segment"
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


@dataclasses.dataclass
class RunResult:
    seconds: float
    cpu_seconds: float  # user + system of the process and the children it waited for (wait4)
    maxrss_bytes: int


class Runner:
    """Runs one command in one configuration and measures it. Owns the scratch directories."""

    def __init__(self, preload, heaptrack, scratch):
        self.preload = preload
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
        if config == MEMTIDE:
            if workload.spawn_loop:
                argv[2:2] = ["--preload", self.preload]  # after "spawn_loop COUNT"
            else:
                env["LD_PRELOAD"] = self.preload
        elif config == HEAPTRACK:
            output = os.path.join(self.heaptrack_dir, "run")
            if workload.gxx:
                argv[1:1] = ["-wrapper", f"{self.heaptrack},-r,-o,{output}"]
            else:
                argv = [self.heaptrack, "-r", "-o", output] + argv
        env.update(extra_env or {})
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
        if config == MEMTIDE and "cannot be preloaded" in stderr:
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
                         maxrss_bytes=usage.ru_maxrss * 1024)

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
    header = ["workload", "plain (s)", "memtide (s)", "ratio", "heaptrack (s)", "ratio", "target", "result",
              "plain spread", "memtide cpu ratio"]
    lines = []
    for row in rows:
        lines.append([
            row["workload"], f"{row['plain_s']:.3f}", f"{row['memtide_s']:.3f}", fmt_ratio(row["memtide_ratio"]),
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="CMake build folder with lib/ and bench/")
    parser.add_argument("--reps", type=int, default=5, help="measured repetitions per configuration")
    parser.add_argument("--no-heaptrack", action="store_true", help="skip the heaptrack configuration")
    parser.add_argument("--only", action="append", default=[],
                        help="run only workloads whose name contains this text (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no per-repetition progress on stderr")
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
    for path in (preload, micro, spawn):
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
    if args.only:
        workloads = [w for w in workloads if any(text in w.name for text in args.only)]

    print(f"memtide bench: {args.reps} repetitions, configurations alternating "
          f"({', '.join(c for c in CONFIGS if c != HEAPTRACK or heaptrack)}), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"preload: {preload}")
    if heaptrack:
        print(f"heaptrack: {heaptrack} -r (record only)")
    print(flush=True)

    scratch = tempfile.mkdtemp(prefix="memtide-bench.", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    rows, rss, started = [], None, time.monotonic()
    try:
        runner = Runner(preload, heaptrack, scratch)
        segment_bytes = check_preload(runner, micro1, log)
        for workload in workloads:
            configs = [PLAIN, MEMTIDE] + ([HEAPTRACK] if heaptrack and workload.heaptrack else [])
            samples, cpu = measure(runner, workload, configs, args.reps, log)
            row = {
                "workload": workload.name, "target": workload.target, "samples": samples,
                "plain_s": statistics.median(samples[PLAIN]), "memtide_s": statistics.median(samples[MEMTIDE]),
                "memtide_ratio": paired_ratio(samples, MEMTIDE),
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
    notes.append("times are medians; ratios are medians of the per-repetition ratios to plain; malloc micro and "
                 "spawn rows use the program's own timer, python3 and g++ the process's wall time")
    notes.append("plain spread is (max - min) / median of the plain runs: the noise floor to read a ratio against")
    notes.append("memtide cpu ratio: the same median ratio for user+system CPU time of the whole process tree "
                 "(wait4); it ignores time spent waiting for a core, so it stays readable on a busy machine")
    notes.append(f"total bench time {time.monotonic() - started:.0f} s")
    print_table(rows, rss, notes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reps": args.reps, "rows": rows, "rss": rss, "notes": notes}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The driver of scripts/gpu-check: runs each component under LD_PRELOAD=libmemtide.so on a real GPU, collects
their ROW/SKIP lines (memtide_gpu.py), adds the exit-state checks (the kept segment against the process's last
in-process figures) and the CLI's --max-gpu-peak gate when the memtide CLI can run here, prints one table of
memtide's figures beside the ground truth, and exits non-zero on any mismatch or failed component.

Components: the CUDA program (tests/gpu/gpu_check/cuda_check.cu, static and -cudart shared), PyTorch (default,
expandable segments, cudaMallocAsync backend, host-register pinned memory), CuPy, JAX (MEM_FRACTION=.1), and
PyTorch again under MEMTIDE_TRACE=sample and full: the unwinder walks CUDA's libraries and the interpreter on
every traced allocation, the GPU checks must still pass, and the trace file must render with `memtide report`.
A framework that is not importable is skipped with one line; nvcc missing skips the CUDA program.
Expected relations: research/CUDA.md §5.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20


class Results:
    def __init__(self):
        self.rows = []  # (component, status, check, memtide, truth, relation)
        self.skips = []  # (what, why)
        self.notes = []  # (component, line)

    def add(self, component, status, check, memtide="-", truth="-", relation="-"):
        self.rows.append((component, status, check, str(memtide), str(truth), relation))

    def failed(self):
        return sum(1 for row in self.rows if row[1] == "FAIL")


def human(value):
    try:
        number = int(value)
    except ValueError:
        return value
    if abs(number) >= MiB:
        return f"{number} ({number / MiB:.1f} MiB)"
    return str(number)


def parse_output(component, stdout, stderr, results):
    """ROW and SKIP lines from a component; memtide's own stderr lines (diagnostics, warnings) as notes."""
    rows = 0
    for line in stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "ROW" and len(fields) == 6:
            status = fields[5].split(" ", 1)[0]
            relation = fields[4] + (f" {fields[5].split(' ', 1)[1]}" if " " in fields[5] else "")
            results.add(component, status, fields[1], fields[2], fields[3], relation)
            rows += 1
        elif fields[0] == "SKIP" and len(fields) == 3:
            results.skips.append((fields[1], fields[2]))
            rows += 1
    for line in stderr.splitlines():
        if line.startswith("memtide: ") and not re.match(r"memtide: (option |segment |removed segment )", line):
            results.notes.append((component, line))
    return rows


def run_component(component, argv, env, timeout, results, cwd=None):
    """Runs one component; a crash, a timeout or a non-zero exit without a FAIL row is a FAIL row itself."""
    started = time.monotonic()
    try:
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        err = expired.stderr.decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        parse_output(component, out, err, results)
        results.add(component, "FAIL", f"finished within {timeout} s", "timed out", "-", "-")
        return None
    failures_before = results.failed()
    rows = parse_output(component, done.stdout, done.stderr, results)
    seconds = time.monotonic() - started
    if done.returncode != 0 and results.failed() == failures_before:
        tail = " | ".join(line for line in done.stderr.strip().splitlines()[-6:])
        results.add(component, "FAIL", f"exit status {done.returncode} after {seconds:.1f} s", "-", "0", tail[:400])
    elif rows == 0:
        results.add(component, "FAIL", "printed no check", "-", "-", done.stderr.strip()[-300:])
    return done


def child_env(preload, segment_dir, extra=None):
    env = dict(os.environ)
    previous = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = preload + (" " + previous if previous else "")
    env["MEMTIDE_DIR"] = segment_dir
    env["MEMTIDE_VERBOSE"] = "1"  # memtide's "gpu: driver lookups …" line at exit, shown as a note
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("MEMTIDE_KEEP_SEGMENT", None)
    env.update(extra or {})
    os.makedirs(segment_dir, exist_ok=True)
    return env


def find_nvcc():
    found = shutil.which("nvcc")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/local/cuda*/bin/nvcc"))
    return candidates[-1] if candidates else None


def field(text, key):
    match = re.search(r"(?:^|\s)" + key + r"=(-?\d+)", text)
    return int(match.group(1)) if match else None


def cuda_components(args, results):
    nvcc = find_nvcc()
    if nvcc is None:
        results.skips.append(("cuda static, cuda shared", "nvcc not found (PATH, /usr/local/cuda*/bin)"))
        return
    cuda_lib = os.path.join(os.path.dirname(os.path.dirname(nvcc)), "lib64")
    source = os.path.join(HERE, "cuda_check.cu")
    dump = os.path.join(args.work, "segment_gpu_dump")
    compiler = shutil.which("c++") or shutil.which("g++")
    dump_built = compiler is not None and subprocess.run(
        [compiler, "-O1", "-I", args.include, "-o", dump, os.path.join(HERE, "segment_gpu_dump.cc")],
        capture_output=True, text=True).returncode == 0
    for flavour in ("static", "shared"):
        component = f"cuda {flavour}"
        if args.only and not any(name in component for name in args.only):
            continue
        binary = os.path.join(args.work, f"cuda_check_{flavour}")
        build = subprocess.run([nvcc, "-O1", "-cudart", flavour, "-I", args.include, "-Xlinker", "-rpath", "-Xlinker",
                                cuda_lib, "-o", binary, source], capture_output=True, text=True)
        if build.returncode != 0:
            results.add(component, "FAIL", "nvcc build", "-", "-", build.stderr.strip()[-400:])
            continue
        segment_dir = os.path.join(args.work, f"segments_{flavour}")
        env = child_env(args.preload, segment_dir, {"MEMTIDE_KEEP_SEGMENT": "1"})
        done = run_component(component, [binary, flavour], env, 90, results)
        if done is None:
            continue
        final = re.search(r"^FINAL .*$", done.stdout, re.M)
        if final is None:
            continue
        final = final.group(0)
        pid = field(final, "pid")
        # The exit publish: the kept segment holds exactly the last in-process figures.
        segments = glob.glob(os.path.join(segment_dir, f"memtide.{pid}.*"))
        if not dump_built:
            results.skips.append((f"{component} exit segment", "no C++ compiler to build segment_gpu_dump"))
        elif len(segments) != 1:
            results.add(component, "FAIL", "kept segment file", len(segments), 1, "==")
        else:
            shown = subprocess.run([dump, segments[0]], capture_output=True, text=True)
            device0 = re.search(r"^SEGMENT ordinal=0 .*$", shown.stdout, re.M)
            if shown.returncode != 0 or device0 is None:
                results.add(component, "FAIL", "exit segment: device 0", shown.stdout + shown.stderr, "present", "-")
            else:
                for key in ("current", "peak", "allocations", "frees", "unknown_frees"):
                    memtide, truth = field(device0.group(0), key), field(final, key)
                    results.add(component, "PASS" if memtide == truth else "FAIL",
                                f"exit segment: device 0 {key} == last in-process value", memtide, truth, "==")
        if flavour == "static":
            if args.cli:
                cli_checks(args, binary, results)
            else:
                results.skips.append(("memtide run --max-gpu-peak", "the memtide CLI does not run here"))


def cli_checks(args, binary, results):
    """`memtide run --max-gpu-peak` gates like --max-peak (exit 3 when any device's peak exceeds the budget)."""
    component = "memtide run"
    for budget, expected in (("1MiB", 3), ("100TiB", 0)):
        directory = os.path.join(args.work, f"run_{budget}")
        os.makedirs(directory, exist_ok=True)
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        done = subprocess.run([args.cli, "run", "--quiet", "--dir", directory, "--report",
                               os.path.join(directory, "report.json"), "--max-gpu-peak", budget, "--", binary, "run"],
                              env=env, capture_output=True, text=True, timeout=120)
        results.add(component, "PASS" if done.returncode == expected else "FAIL",
                    f"--max-gpu-peak {budget}: exit status", done.returncode, expected, "==")


def python_components(args, results):
    python = args.python
    torch_modes = {
        "default": {},
        "expandable": {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
        "async": {"PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"},
        "register": {"PYTORCH_CUDA_ALLOC_CONF": "pinned_use_cuda_host_register:True,pinned_num_register_threads:1"},
        "graph": {},
    }
    plan = [(f"torch {mode}", [python, os.path.join(HERE, "torch_check.py"), mode], extra, 150)
            for mode, extra in torch_modes.items()]
    plan.append(("cupy", [python, os.path.join(HERE, "cupy_check.py")], {}, 120))
    plan.append(("jax", [python, os.path.join(HERE, "jax_check.py")],
                 {"XLA_PYTHON_CLIENT_MEM_FRACTION": ".1", "XLA_PYTHON_CLIENT_PREALLOCATE": "true"}, 180))
    for component, argv, extra, timeout in plan:
        if args.only and not any(name in component for name in args.only):
            continue
        segment_dir = os.path.join(args.work, "segments_" + component.replace(" ", "_"))
        run_component(component, argv, child_env(args.preload, segment_dir, extra), timeout, results)


def tracing_components(args, results):
    """torch_check.py's default mode with allocation stacks on: same checks, plus the trace it leaves."""
    untraced_seconds = None
    for mode in ("off", "sample", "full"):
        component = f"torch traced {mode}"
        if args.only and not any(name in component for name in args.only):
            continue
        segment_dir = os.path.join(args.work, f"segments_traced_{mode}")
        trace_path = os.path.join(args.work, f"trace_{mode}.json")
        extra = {"MEMTIDE_TRACE": mode}
        if mode != "off":
            extra["MEMTIDE_TRACE_FILE"] = trace_path
        started = time.monotonic()
        done = run_component(component, [args.python, os.path.join(HERE, "torch_check.py"), "default"],
                             child_env(args.preload, segment_dir, extra), 300, results)
        seconds = time.monotonic() - started
        if done is None or done.returncode != 0:
            continue
        if mode == "off":
            untraced_seconds = seconds
            continue
        if untraced_seconds:
            results.add(component, "INFO", "wall time vs MEMTIDE_TRACE=off", f"{seconds:.1f} s",
                        f"{untraced_seconds:.1f} s", f"{seconds / untraced_seconds:.2f}x")
        if not os.path.isfile(trace_path):
            results.add(component, "FAIL", "trace file written at exit", "missing", trace_path, "-")
            continue
        if not args.cli:
            results.skips.append((f"{component}: memtide report", "the memtide CLI does not run here"))
            continue
        rendering = time.monotonic()
        rendered = subprocess.run([args.cli, "report", trace_path, "--format", "text"], capture_output=True,
                                  text=True, timeout=300)
        results.add(component, "INFO", "trace file size; memtide report's wall time",
                    f"{os.path.getsize(trace_path)} B", f"{time.monotonic() - rendering:.1f} s", "-")
        named = len(re.findall(r"^\s+#\d+ (?!0x)\S", rendered.stdout, re.M))
        results.add(component, "PASS" if rendered.returncode == 0 else "FAIL", "memtide report: exit status",
                    rendered.returncode, 0, "==")
        results.add(component, "PASS" if named > 0 else "FAIL", "memtide report: symbolized frames", named, "> 0",
                    rendered.stderr.strip()[-200:] or ">")


def print_table(results):
    headers = ("result", "check", "memtide", "ground truth", "relation")
    table = [(status, f"{component}: {check}", human(memtide), human(truth), relation)
             for component, status, check, memtide, truth, relation in results.rows]
    widths = [max(len(headers[i]), *(len(row[i]) for row in table)) if table else len(headers[i]) for i in range(5)]
    widths = [min(width, 90) for width in widths]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    print(line.format(*headers))
    print("  ".join("-" * width for width in widths))
    for row in table:
        print(line.format(*[cell if len(cell) <= 90 else cell[:87] + "..." for cell in row]))
    for what, why in results.skips:
        print(f"SKIP  {what}: {why}")
    if results.notes:
        print("\nmemtide's own lines (MEMTIDE_VERBOSE):")
        for component, note in results.notes:
            print(f"  [{component}] {note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", required=True, help="libmemtide.so")
    parser.add_argument("--cli", default="", help="the memtide CLI, if it can run here")
    parser.add_argument("--include", required=True, help="the project's include/ folder")
    parser.add_argument("--work", default="", help="scratch folder (default: a new one under /tmp)")
    parser.add_argument("--python", default=sys.executable, help="the Python with the frameworks")
    parser.add_argument("--only", action="append", default=[], help="run components whose name contains this")
    args = parser.parse_args()
    args.preload = os.path.abspath(args.preload)
    args.include = os.path.abspath(args.include)
    if not args.work:
        args.work = subprocess.run(["mktemp", "-d", "/tmp/memtide_gpu_check_XXXXXX"], capture_output=True,
                                   text=True, check=True).stdout.strip()
    os.makedirs(args.work, exist_ok=True)

    smi = shutil.which("nvidia-smi")
    if smi:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
        print("GPUs: " + (listing.stdout.strip().replace("\n", "; ") or listing.stderr.strip()))
    print(f"preload: {args.preload}\nscratch: {args.work}\n")

    results = Results()
    started = time.monotonic()
    cuda_components(args, results)
    python_components(args, results)
    tracing_components(args, results)
    print_table(results)
    passed = sum(1 for row in results.rows if row[1] == "PASS")
    failed = results.failed()
    print(f"\ngpu-check: {passed} passed, {failed} failed, {len(results.skips)} skipped "
          f"in {time.monotonic() - started:.0f} s")
    return 1 if failed or (passed == 0) else 0


if __name__ == "__main__":
    sys.exit(main())

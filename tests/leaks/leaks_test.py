#!/usr/bin/python3
"""memtide's leak and peak figures against the peers', on the same small deterministic programs
(tests/leaks/programs; sentinel sizes 11001, 12002, …).

usage: leaks_test.py CASE --cli memtide --preload libmemtide.so --programs DIR
CASE is one ctest (tests/leaks/CMakeLists.txt):
  <program>        (leaks.<program>) valgrind memcheck vs memtide, twice: `memtide run --leaks --report R.json`
                   and `memtide report --format json` of the raw trace of an LD_PRELOAD run. Per allocating
                   function (the innermost frame in the program's own code: the executable or its test
                   libraries) memtide's leaked bytes and blocks == valgrind's, all Leak_* kinds summed
                   (definitely + indirectly + possibly lost + still reachable); memtide's leaked total (its
                   "runtime_leaks", the C runtime's own blocks, left out) == valgrind's "in use at exit"; and
                   each sentinel of the program is on both sides with its exact size.
  peak.<program>   (leaks.peak.<program>) heaptrack vs memtide full mode: memtide's traced peak_bytes
                   (requested bytes; raw trace and `memtide run` report) == heaptrack's peak; both less glibc's
                   thread TLS blocks == the program's known peak. heaptrack's figure is computed exactly from its raw event stream (heaptrack_print
                   rounds: "872.70K"; the rounded figure is checked against the exact one), over the blocks
                   allocated under main() or a thread: heaptrack's own start-up blocks (its libstdc++'s
                   72,704-byte emergency exception pool, in a C program) are printed and left out.
  real_programs    (leaks.real_programs) real tools (sqlite3, git, python3, coreutils), whose binaries have no
                   symbols to compare by function: memtide's leaked total (full mode, LD_PRELOAD, raw trace read
                   by `memtide report`) == valgrind's "in use at exit", bytes and blocks. Their C runtime state
                   (locale, NSS, stdio, setenv) is what the exit-cleanup probe must take out. Commands that copy
                   the environment are left out: valgrind's and memtide's variables differ.
  sample_accuracy  (leaks.sample_accuracy) sample mode: each big site's estimated live bytes within 10% of
                   the truth (at a mean where 10% is >= 4 standard errors; see sample_case).
Exit 0 passed, 1 failed, 77 skipped (said loudly: only when valgrind or heaptrack is not installed).
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

SKIP = 77
ARGS = None
KEEP_DIR = os.environ.get("MEMTIDE_LEAKS_KEEP")  # set: the work folder is kept for a post-mortem

NO_PROGRAM_FRAME = "<no-program-frame>"  # one word: difference lines are keyed by their first word


class Failure(Exception):
    pass


class Skip(Exception):
    pass


# What each program leaks by allocating function (bytes, blocks): its sentinels. Both tools must report at
# least these, exactly; the full per-function tables must then agree with each other.
def program_table(programs):
    kept_lib = os.path.join(programs, "libleaky_kept_lib.so")
    closed_lib = os.path.join(programs, "libleaky_closed_lib.so")
    replaced_a = os.path.join(programs, "libreplaced_a.so")
    replaced_b = os.path.join(programs, "libreplaced_b.so")
    return {
        "direct_leaks": dict(expect={"leak_one": (11001, 1), "leak_two": (24004, 2), "leak_three": (39009, 3)},
                             absent=["allocate_and_free"]),
        "lost_list": dict(expect={"push_node": (70040, 5)}),
        "thread_leaks": dict(expect={"thread_leak": (15005 + 15021 + 15037, 3)}, absent=["thread_main"]),
        "dlopen_replaced": dict(args=[replaced_a, replaced_b],
                                expect={"replaced_a_leak": (18008, 1), "replaced_b_leak": (19009, 1)},
                                own_modules=[replaced_a, replaced_b]),
        "dlopen_leaks": dict(args=[kept_lib, closed_lib],
                             expect={"kept_lib_leak": (16006, 1), "closed_lib_leak": (17007, 1)},
                             own_modules=[kept_lib, closed_lib]),
        "realloc_chains": dict(expect={"grow_and_leak": (18008, 1), "shrink_and_leak": (18108, 1)},
                               absent=["grow_and_free"]),
        "still_reachable": dict(expect={"make_global": (19009, 1), "fill_table": (38218, 2)}),
        "cxx_leaks": dict(expect={"leak_new": (20010, 1), "leak_new_array": (42022, 2)},
                          absent=["new_and_delete"]),
        "frees_everything": dict(expect={}, total=(0, 0)),
        "end_exit": dict(exit_code=3, expect={"leak_before_exit": (23003, 1), "at_exit_handler": (23103, 1)}),
        "end_underscore_exit": dict(exit_code=4, expect={"leak_before_underscore_exit": (24004, 1)}),
        "end_return": dict(expect={"leak_before_return": (25005, 1)}),
        "runtime_state": dict(expect={"leak_beside_runtime": (27027, 1)}),
        "libc_family": dict(expect={"leak_calloc": (26025, 1), "leak_posix_memalign": (26026, 1),
                                    "leak_aligned_alloc": (26112, 1), "leak_memalign": (26030, 1),
                                    "leak_strdup": (26028, 1)}),
    }


# Programs with a known peak of requested bytes (each file's comment derives it), not counting glibc's
# thread TLS: pthread_create allocates a DTV for each new thread stack (calloc in allocate_dtv, from
# _dl_allocate_tls; 320 bytes here) and keeps it with the cached stack of a joined thread for the next one.
# Its size depends on how many TLS-using modules the process has loaded, which the tracers change.
PEAKS = {"peak_steps": 800000, "peak_realloc": 720000, "peak_threads": 1460000}
THREAD_TLS_FUNCTIONS = ("_dl_allocate_tls", "allocate_dtv")

SAMPLE_SITES = {"site_large": 64 << 20, "site_medium": 16 << 20, "site_small": 4 << 20}
SAMPLE_TOLERANCE = 0.10
DEFAULT_SAMPLE_MEAN = 512 * 1024  # MEMTIDE_TRACE_SAMPLE's default (preload/options.def)
ASSERTED_SAMPLE_MEAN = 16 * 1024


def check(condition, message, *context):
    if not condition:
        details = "\n".join(str(item) for item in context)
        raise Failure(message + ("\n" + details if details else ""))


def clean_env(extra=None):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MEMTIDE_") and key not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
    env.update(extra or {})
    return env


def run(command, env=None, timeout=60, expect=None, cwd=None):
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, errors="replace",
                            env=clean_env(env), timeout=timeout, cwd=cwd)
    if expect is not None and result.returncode != expect:
        raise Failure(f"{' '.join(map(str, command))} exited {result.returncode}, expected {expect}\n"
                      f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
    return result


def base_function(name):
    """A function name without its C++ parameter list ("leak_new()" and "leak_new" are one function)."""
    if name is None:
        return None
    cut = name.find("(")
    return name[:cut] if cut > 0 else name


def fmt_table(table):
    lines = []
    for key in sorted(table):
        lines.append(f"    {key:32} {table[key][0]:>9} bytes {table[key][1]:>4} blocks")
    return "\n".join(lines) if lines else "    (none)"


def diff_tables(left_name, left, right_name, right):
    lines = []
    for key in sorted(set(left) | set(right)):
        a, b = left.get(key, (0, 0)), right.get(key, (0, 0))
        if a != b:
            lines.append(f"    {key:32} {left_name} {a[0]} bytes {a[1]} blocks, {right_name} {b[0]} bytes {b[1]} blocks")
    return "\n".join(lines)


def add(table, key, size, count):
    old = table.get(key, (0, 0))
    table[key] = (old[0] + size, old[1] + count)


# ---------------------------------------------------------------------------------------------------------
# valgrind memcheck

def valgrind_leaks(program, args, own_paths, work, exit_code):
    """Runs memcheck twice on the program (XML for the loss records with exact stacks; text for the HEAP
    SUMMARY, which XML mode does not print). Returns ({function: (bytes, blocks)}, records, (in use bytes,
    blocks))."""
    common = ["valgrind", "--leak-check=full", "--show-leak-kinds=all", "--errors-for-leak-kinds=none",
              # frames of a library dlclose'd before exit stay named (closed_lib_leak), and deep dlopen stacks
              # reach the program's frames
              "--keep-debuginfo=yes", "--num-callers=64"]
    xml_file = os.path.join(work, "valgrind.xml")
    log_file = os.path.join(work, "valgrind.log")
    run([*common, "--xml=yes", f"--xml-file={xml_file}", program, *args], expect=exit_code, timeout=120)
    run([*common, f"--log-file={log_file}", program, *args], expect=exit_code, timeout=120)

    with open(log_file, errors="replace") as log:
        text = log.read()
    match = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", text)
    check(match is not None, "valgrind's log has no 'in use at exit' line", text[-3000:])
    in_use = (int(match.group(1).replace(",", "")), int(match.group(2).replace(",", "")))
    suppressed = re.search(r"suppressed: ([\d,]+) bytes in ([\d,]+) blocks", text)
    check(suppressed is None or suppressed.group(1) == "0",
          "valgrind suppressed some leaks (a default suppression matched): the loss records do not add up "
          "to 'in use at exit'", text[-3000:])

    root = ElementTree.parse(xml_file).getroot()
    records = []
    table = {}
    for error in root.iter("error"):
        kind = error.findtext("kind") or ""
        if not kind.startswith("Leak_"):
            continue
        leaked_bytes = int(error.findtext("xwhat/leakedbytes"))
        # A definitely/possibly lost record that other blocks hang from counts them in <leakedbytes> too
        # ("70,040 (14,008 direct, 56,032 indirect) bytes in 1 blocks"); they have their own
        # Leak_IndirectlyLost record, so only the direct bytes are this record's.
        split = re.match(r"([\d,]+) \(([\d,]+) direct, ([\d,]+) indirect\) bytes", error.findtext("xwhat/text") or "")
        if split:
            leaked_bytes = int(split.group(2).replace(",", ""))
        leaked_blocks = int(error.findtext("xwhat/leakedblocks"))
        frames = [(frame.findtext("obj"), frame.findtext("fn")) for frame in error.findall("stack/frame")]
        key = NO_PROGRAM_FRAME
        for obj, function in frames:
            if obj is not None and os.path.realpath(obj) in own_paths:
                key = base_function(function) or "??"
                break
        records.append(dict(kind=kind, bytes=leaked_bytes, blocks=leaked_blocks, key=key,
                            stack=[f"{function or '??'} ({os.path.basename(obj or '?')})" for obj, function in frames]))
        add(table, key, leaked_bytes, leaked_blocks)
    total = (sum(record["bytes"] for record in records), sum(record["blocks"] for record in records))
    check(total == in_use, f"valgrind's loss records add up to {total}, its HEAP SUMMARY says {in_use} in use",
          *records)
    return table, records, in_use


# ---------------------------------------------------------------------------------------------------------
# memtide

def addr2line(module_path, offsets):
    """{offset: function} for return addresses `offset` (file addresses) in module_path, looked up at
    offset - 1 (the call instruction)."""
    if not offsets or not os.path.exists(module_path):
        return {}
    offsets = sorted(set(offsets))
    result = run(["addr2line", "-f", "-C", "-e", module_path, *[hex(offset - 1) for offset in offsets]],
                 expect=0)
    lines = result.stdout.splitlines()
    return {offset: lines[2 * index] for index, offset in enumerate(offsets) if 2 * index < len(lines)}


def memtide_raw_trace(program, args, work, exit_code, extra_env=None):
    """Runs the program under LD_PRELOAD with MEMTIDE_TRACE (full unless extra_env says otherwise) and returns
    the raw trace file (tracer/trace_file.h)."""
    trace_pattern = os.path.join(work, "trace.%p.json")
    env = {"LD_PRELOAD": ARGS.preload, "MEMTIDE_TRACE": "full", "MEMTIDE_TRACE_FILE": trace_pattern,
           "MEMTIDE_DIR": work, "MEMTIDE_LEAK_TOP": "0", "MEMTIDE_STRICT": "1"}
    env.update(extra_env or {})
    result = run([program, *args], env=env, expect=exit_code)
    traces = [name for name in os.listdir(work) if name.startswith("trace.") and name.endswith(".json")]
    check(len(traces) == 1, f"expected one trace file in {work}, found {traces}", result.stderr[-3000:])
    with open(os.path.join(work, traces[0])) as trace_file:
        trace = json.load(trace_file)
    os.rename(os.path.join(work, traces[0]), os.path.join(work, "raw_" + traces[0]))
    check(trace.get("memtide_trace_version") == 2, "unexpected trace version", trace.get("memtide_trace_version"))
    check(trace.get("complete") is True, "the trace says it is not complete (the tracer ran out of room)")
    return unrolled(trace)


def unrolled(trace):
    """The version-2 call tree unrolled: "stacks" [{"id", "frames" innermost first}] and "sites" as objects with
    a "stack" id, the shape the checks below read."""
    fields = trace["site_fields"]
    stacks, sites = [], []
    for number, values in enumerate(trace["sites"], start=1):
        site = dict(zip(fields, values))
        frames, node = [], site.pop("node")
        while node >= 0:
            parent, frame = trace["nodes"][node]
            frames.append(trace["frames"][frame])
            node = parent
        stacks.append({"id": number, "frames": frames})
        site["stack"] = number
        sites.append(site)
    return dict(trace, stacks=stacks, sites=sites)


def raw_trace_sites(trace, own_paths, figure="live"):
    """The trace's sites with their innermost own frame named by addr2line: [(key, bytes, blocks, stack)]."""
    modules = trace["modules"]
    stacks = {stack["id"]: stack["frames"] for stack in trace["stacks"]}
    wanted = {}
    for frames in stacks.values():
        for module_index, offset in frames:
            if module_index >= 0:
                wanted.setdefault(module_index, set()).add(offset)
    names = {index: addr2line(modules[index]["path"], offsets) for index, offsets in wanted.items()}
    sites = []
    for site in trace["sites"]:
        frames = stacks[site["stack"]]
        key = NO_PROGRAM_FRAME
        stack_text = []
        for module_index, offset in frames:
            if module_index < 0:
                stack_text.append(f"?? ({hex(offset)})")
                continue
            path = modules[module_index]["path"]
            function = names.get(module_index, {}).get(offset, "??")
            stack_text.append(f"{function} ({os.path.basename(path)}+{hex(offset)})")
            if key == NO_PROGRAM_FRAME and os.path.realpath(path) in own_paths:
                key = base_function(function)
        sites.append((key, site[f"{figure}_bytes"], site[f"{figure}_blocks"], stack_text))
    return sites


def cli_has_leak_report():
    result = run([ARGS.cli, "run", "--help"])
    return "--leaks" in result.stdout + result.stderr and "--trace" in result.stdout + result.stderr


def find_leak_lists(document):
    """The object of a `memtide run --report` file that holds "leaks" and "runtime_leaks"."""
    if isinstance(document, dict):
        if "leaks" in document and "runtime_leaks" in document:
            return document
        for value in document.values():
            found = find_leak_lists(value)
            if found is not None:
                return found
    return None


def memtide_run_report(program, args, work, exit_code):
    """`memtide run --leaks --report R.json -- program args`: the report, and the command's result."""
    report_path = os.path.join(work, "report.json")
    result = run([ARGS.cli, "run", "--leaks", "--report", report_path, "--", program, *args],
                 env={"MEMTIDE_DIR": work})
    # `memtide run` exits with the program's code (a budget would make it 3; none is set here).
    check(result.returncode == exit_code and os.path.exists(report_path),
          f"memtide run exited {result.returncode} (the program exits {exit_code}) "
          f"{'and wrote' if os.path.exists(report_path) else 'without writing'} its report",
          result.stdout[-3000:], result.stderr[-3000:])
    with open(report_path) as report_file:
        return json.load(report_file), result


def memtide_report_of(trace_path):
    """`memtide report --format json --top 0 TRACE`: the raw trace classified and symbolized by the CLI."""
    result = run([ARGS.cli, "report", "--format", "json", "--top", "0", trace_path], expect=0)
    return json.loads(result.stdout)


def report_stack_key(stack, own_names):
    for frame in stack:
        if frame.get("module") in own_names:
            return base_function(frame.get("function"))
    return NO_PROGRAM_FRAME


def report_stack_text(stack):
    return [f"{frame.get('function')} {frame.get('file')}:{frame.get('line')} ({frame.get('module')} "
            f"{frame.get('address')})" for frame in stack]


# ---------------------------------------------------------------------------------------------------------
# cases

def memtide_leak_tables(lists, own_names):
    """From a report's lists: ({function: (bytes, blocks)} of "leaks", their total, the runtime blocks)."""
    table = {}
    for leak in lists["leaks"]:
        add(table, report_stack_key(leak["stack"], own_names), leak["bytes"], leak["count"])
    total = (sum(leak["bytes"] for leak in lists["leaks"]), sum(leak["count"] for leak in lists["leaks"]))
    runtime = [(leak["bytes"], leak["count"], report_stack_text(leak["stack"])) for leak in lists["runtime_leaks"]]
    return table, total, runtime


def compare_with_valgrind(source, lists, own_names, spec, v_table, v_records, v_in_use):
    """Every difference between one memtide report's leak lists and valgrind's, as readable paragraphs."""
    problems = []
    if lists is None:
        return [f"{source}: no leaks / runtime_leaks lists"]
    if "leaks_not_listed" in lists or "runtime_leaks_not_listed" in lists:
        problems.append(f"{source}: the report cut its leak lists")
    m_table, m_total, runtime = memtide_leak_tables(lists, own_names)
    print(f"{source}: leaks by function (runtime_leaks left out):\n{fmt_table(m_table)}")
    print(f"{source}: leaked total {m_total[0]} bytes in {m_total[1]} blocks; runtime_leaks "
          f"{sum(item[0] for item in runtime)} bytes in {sum(item[1] for item in runtime)} blocks")
    for size, count, stack in runtime:
        print(f"  runtime block(s): {size} bytes in {count}:\n      " + "\n      ".join(stack))
    if "leaked_bytes" in lists and (lists["leaked_bytes"], lists["leaked_blocks"]) != m_total:
        problems.append(f"{source}: leaked_bytes/leaked_blocks {(lists['leaked_bytes'], lists['leaked_blocks'])} "
                        f"are not the sum of its leaks {m_total}")
    difference = diff_tables("memtide", m_table, "valgrind", v_table)
    if difference:
        lines = [f"{source}: per-function leaks differ from valgrind's:", difference]
        keys = {line.split()[0] for line in difference.splitlines()}
        for record in v_records:
            if record["key"] in keys:
                lines.append(f"  valgrind {record['kind']} {record['bytes']} bytes in {record['blocks']} blocks:\n"
                             "      " + "\n      ".join(record["stack"]))
        for leak in lists["leaks"]:
            if report_stack_key(leak["stack"], own_names) in keys:
                lines.append(f"  memtide leak {leak['bytes']} bytes in {leak['count']} blocks:\n      "
                             + "\n      ".join(report_stack_text(leak["stack"])))
        problems.append("\n".join(lines))
    if m_total != v_in_use:
        problems.append(f"{source}: leaked total {m_total} (runtime_leaks left out) != valgrind's in use at exit "
                        f"{v_in_use}")
    for function, figures in spec["expect"].items():
        if m_table.get(function) != figures:
            problems.append(f"{source} reports {m_table.get(function)} for {function}, the program leaks {figures}")
    for function in spec.get("absent", []):
        if function in m_table:
            problems.append(f"{source} reports {m_table[function]} for {function}, which frees all it allocates")
    if "total" in spec and m_total != spec["total"]:
        problems.append(f"{source}'s total is {m_total}, the program leaks {spec['total']}")
    return problems


def leak_case(name, work):
    table = program_table(ARGS.programs)
    spec = table[name]
    program = os.path.join(ARGS.programs, name)
    args = spec.get("args", [])
    exit_code = spec.get("exit_code", 0)
    own_paths = {os.path.realpath(program), *(os.path.realpath(path) for path in spec.get("own_modules", []))}
    own_names = {os.path.basename(path) for path in own_paths}

    valgrind_dir = os.path.join(work, "valgrind")
    os.mkdir(valgrind_dir)
    v_table, v_records, v_in_use = valgrind_leaks(program, args, own_paths, valgrind_dir, exit_code)
    print(f"{name}: valgrind by function (all Leak_* kinds):\n{fmt_table(v_table)}")
    print(f"{name}: valgrind in use at exit: {v_in_use[0]} bytes in {v_in_use[1]} blocks")
    problems = []
    for function, figures in spec["expect"].items():
        if v_table.get(function) != figures:
            problems.append(f"valgrind reports {v_table.get(function)} for {function}, the program leaks {figures}")
    for function in spec.get("absent", []):
        if function in v_table:
            problems.append(f"valgrind reports {v_table[function]} for {function}, which frees all it allocates")
    if "total" in spec and v_in_use != spec["total"]:
        problems.append(f"valgrind's total is {v_in_use}, the program leaks {spec['total']}")

    # 1. memtide as a user runs it: `memtide run --leaks --report R.json -- prog`.
    run_dir = os.path.join(work, "memtide-run")
    os.mkdir(run_dir)
    try:
        report, _ = memtide_run_report(program, args, run_dir, exit_code)
        problems += compare_with_valgrind("memtide run --leaks --report", find_leak_lists(report), own_names,
                                          spec, v_table, v_records, v_in_use)
    except Failure as failure:
        problems.append(f"memtide run --leaks --report: {failure}")

    # 2. The preload alone (LD_PRELOAD, MEMTIDE_TRACE=full, MEMTIDE_TRACE_FILE), its raw trace read back by
    # `memtide report --format json`; the raw sites, symbolized here with addr2line (independently of
    # memtide's libdw symbolizer), are printed when something differs.
    raw_dir = os.path.join(work, "raw")
    os.mkdir(raw_dir)
    raw = memtide_raw_trace(program, args, raw_dir, exit_code)
    raw_path = os.path.join(raw_dir, f"raw_trace.{raw['pid']}.json")
    raw_problems = compare_with_valgrind("memtide report (of the LD_PRELOAD run's raw trace)",
                                         find_leak_lists(memtide_report_of(raw_path)), own_names, spec,
                                         v_table, v_records, v_in_use)
    problems += raw_problems
    if problems:
        lines = [f"the raw trace's live sites (addr2line), {raw['totals']['live_bytes']} bytes in "
                 f"{raw['totals']['live_blocks']} blocks:"]
        for key, size, count, stack in raw_trace_sites(raw, own_paths):
            if count > 0:
                lines.append(f"  {size} bytes in {count} blocks [{key}]:\n      " + "\n      ".join(stack))
        problems.append("\n".join(lines))
    check(not problems, "\n\n".join(problems))


# Deterministic commands that leave C runtime state behind at exit and do not copy their environment.
REAL_COMMANDS = [
    ["sqlite3", ":memory:", "select 1;"],
    ["git", "--version"],
    ["/usr/bin/python3", "-c", "pass"],
    ["ls", "/"],
    ["sort", "/etc/passwd"],
    ["sed", "-n", "1p", "/etc/passwd"],
]


def valgrind_in_use(command, work):
    log_file = os.path.join(work, "valgrind.log")
    run(["valgrind", f"--log-file={log_file}", *command], expect=0, timeout=120)
    with open(log_file, errors="replace") as log:
        text = log.read()
    match = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", text)
    check(match is not None, "valgrind's log has no 'in use at exit' line", text[-3000:])
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


def real_programs_case(work):
    problems = []
    for number, command in enumerate(REAL_COMMANDS):
        check(shutil.which(command[0]) is not None, f"{command[0]} is not installed (scripts/setup installs it)")
        case_dir = os.path.join(work, str(number))
        os.mkdir(case_dir)
        v_in_use = valgrind_in_use(command, case_dir)
        raw = memtide_raw_trace(shutil.which(command[0]), command[1:], case_dir, 0)
        report = memtide_report_of(os.path.join(case_dir, f"raw_trace.{raw['pid']}.json"))
        leaked = (sum(leak["bytes"] for leak in report["leaks"]), sum(leak["count"] for leak in report["leaks"]))
        runtime = (sum(leak["bytes"] for leak in report["runtime_leaks"]),
                   sum(leak["count"] for leak in report["runtime_leaks"]))
        line = (f"{' '.join(command)}: valgrind in use at exit {v_in_use[0]} bytes in {v_in_use[1]} blocks; memtide "
                f"leaked {leaked[0]} in {leaked[1]} (the C runtime's {runtime[0]} in {runtime[1]})")
        print(line)
        check("freed_at_exit" in raw, f"{' '.join(command)}: the trace has no freed_at_exit (the probe did not run)")
        if leaked != v_in_use:
            problems.append(line)
    check(not problems, "memtide's leaked totals differ from valgrind's:\n" + "\n".join(problems))


def heaptrack_peak(program, work):
    """Runs heaptrack and computes the peak exactly from its raw event stream. Returns {"all": peak of every
    event, "program": peak of the blocks allocated under main() or a thread, "own": the same less glibc's
    thread TLS blocks, "startup": the blocks left out [(size, stack)], "summary": heaptrack_print's line}."""
    output = os.path.join(work, "heaptrack")
    result = run(["heaptrack", "-o", output, program], expect=0, timeout=120)
    data = output + ".zst"
    check(os.path.exists(data), "heaptrack wrote no data file", result.stdout[-2000:], result.stderr[-2000:])
    raw = run(["zstd", "-dcq", data], expect=0).stdout.splitlines()

    strings = [""]          # 's' lines, 1-based
    ips = [None]            # 'i' lines, 1-based: function names of the frame (inlined ones included)
    traces = [(0, 0)]       # 't' lines, 1-based: (ip index, parent trace index)
    infos = []              # 'a' lines, 0-based: (size, trace index)
    live = all_peak = 0
    program_live = program_peak = 0
    own_live = own_peak = 0  # the program's blocks less glibc's thread TLS (see THREAD_TLS_FUNCTIONS)
    startup = []
    program_trace_cache = {}
    tls_trace_cache = {}

    def functions_of(trace_index):
        names = []
        while trace_index != 0:
            ip_index, trace_index = traces[trace_index]
            names.extend(ips[ip_index])
        return names

    def is_program_block(trace_index):
        # Allocated by code running under main() or a thread's start routine, not by the loader's
        # constructors at start-up (heaptrack's own libstdc++ allocates its emergency exception pool there,
        # in a C program that does not use libstdc++ at all).
        if trace_index not in program_trace_cache:
            names = functions_of(trace_index)
            program_trace_cache[trace_index] = "main" in names or "start_thread" in names
        return program_trace_cache[trace_index]

    def is_thread_tls(trace_index):
        if trace_index not in tls_trace_cache:
            tls_trace_cache[trace_index] = any(is_thread_tls_function(name) for name in functions_of(trace_index))
        return tls_trace_cache[trace_index]

    for line in raw:
        if not line:
            continue
        tag, _, rest = line.partition(" ")
        if tag == "s":
            _, _, text = rest.partition(" ")
            strings.append(text)
        elif tag == "i":
            fields = rest.split()
            # "i ADDRESS MODULE [FUNCTION FILE LINE]..." (inlined frames first); no function: the module
            names = [strings[int(fields[index], 16)] or "??" for index in range(2, len(fields), 3)]
            module = strings[int(fields[1], 16)] if len(fields) > 1 else ""
            ips.append(names or [f"?? ({os.path.basename(module)})"])
        elif tag == "t":
            ip_index, parent = (int(field, 16) for field in rest.split()[:2])
            traces.append((ip_index, parent))
        elif tag == "a":
            size, trace_index = (int(field, 16) for field in rest.split()[:2])
            infos.append((size, trace_index))
        elif tag in ("+", "-"):
            size, trace_index = infos[int(rest.split()[0], 16)]
            sign = 1 if tag == "+" else -1
            live += sign * size
            all_peak = max(all_peak, live)
            if is_program_block(trace_index):
                program_live += sign * size
                program_peak = max(program_peak, program_live)
                if not is_thread_tls(trace_index):
                    own_live += sign * size
                    own_peak = max(own_peak, own_live)
            elif tag == "+":
                startup.append((size, functions_of(trace_index)))

    printed = run(["heaptrack_print", "-f", data, "--print-peaks=0", "--print-allocators=0",
                   "--print-temporary=0", "--print-leaks=0"], expect=0).stdout
    summary = re.search(r"peak heap memory consumption: ([\d.]+)([KMGT]?)B?", printed)
    check(summary is not None, "heaptrack_print printed no 'peak heap memory consumption'", printed[-2000:])
    # heaptrack_print rounds (872.70K); the raw stream is the exact figure. Check the two agree (units of
    # 1000, two decimals) so the stream is read the way heaptrack reads it.
    scale = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[summary.group(2)]
    check(abs(all_peak / scale - float(summary.group(1))) <= 0.0051 + (0.5 if scale == 1 else 0),
          f"the peak computed from heaptrack's events ({all_peak}) is not what heaptrack_print says "
          f"({summary.group(0)})")
    return dict(all=all_peak, program=program_peak, own=own_peak, startup=startup, summary=summary.group(0))


def is_thread_tls_function(name):
    return any(function in (name or "") for function in THREAD_TLS_FUNCTIONS)


def peak_case(name, work):
    program = os.path.join(ARGS.programs, name)
    expected = PEAKS[name]
    heaptrack = heaptrack_peak(program, work)
    print(f"{name}: heaptrack_print: {heaptrack['summary']}; exact from its events: {heaptrack['all']} bytes; "
          f"the program's blocks (start-up left out): {heaptrack['program']} bytes; less thread TLS: "
          f"{heaptrack['own']} bytes")
    for size, stack in heaptrack["startup"]:
        print(f"  heaptrack start-up block, not the program's: {size} bytes at " + " <- ".join(stack[:6]))

    raw_dir = os.path.join(work, "raw")
    os.mkdir(raw_dir)
    raw = memtide_raw_trace(program, [], raw_dir, 0)
    raw_peak = raw["totals"]["peak_bytes"]
    raw_tls = sum(size for _, size, _, stack in raw_trace_sites(raw, {os.path.realpath(program)}, "peak")
                  if any(is_thread_tls_function(frame) for frame in stack))

    report_dir = os.path.join(work, "memtide")
    os.mkdir(report_dir)
    report, _ = memtide_run_report(program, [], report_dir, 0)
    trace = report.get("trace")
    if not isinstance(trace, dict) or "peak_bytes" not in trace:
        lists = find_leak_lists(report)
        trace = lists.get("trace") if lists else None
    check(isinstance(trace, dict) and "peak_bytes" in trace, "the report has no trace.peak_bytes",
          json.dumps(report)[:2000])
    report_peak = trace["peak_bytes"]
    print(f"{name}: memtide full mode peak_bytes: raw trace {raw_peak} (thread TLS held there: {raw_tls}), "
          f"`memtide run` report {report_peak}; the program's own peak: {expected}")

    problems = []
    if heaptrack["own"] != expected:
        problems.append(f"heaptrack's peak of the program's blocks is {heaptrack['own']}, the program's is {expected}")
    if report_peak != raw_peak:
        problems.append(f"memtide's peak: report {report_peak}, raw trace {raw_peak} (two runs of one program)")
    if raw_peak - raw_tls != heaptrack["own"]:
        problems.append(f"memtide's peak less thread TLS {raw_peak - raw_tls} != heaptrack's {heaptrack['own']}")
    heaptrack_tls = heaptrack["program"] - heaptrack["own"]
    if raw_tls == heaptrack_tls:
        if raw_peak != heaptrack["program"]:
            problems.append(f"memtide's peak {raw_peak} != heaptrack's {heaptrack['program']}")
    else:
        # A DTV has a slot per TLS-using module loaded: memtide's tracer module and heaptrack's preload bring
        # different ones, so the two processes' DTVs may differ in size; the rest must still be equal.
        print(f"note: thread TLS at the peak differs between the two processes (memtide {raw_tls}, heaptrack "
              f"{heaptrack_tls}): the whole peaks ({raw_peak} and {heaptrack['program']}) are compared less it")
    check(not problems, "\n".join(problems))


def sample_profile_sizes():
    """The block sizes of each site of sample_profile.c (the same xorshift generator, the same cut)."""
    mask = (1 << 64) - 1
    state = 0x2545F4914F6CDD1D
    sizes = {}
    for site in ("site_large", "site_medium", "site_small"):  # the program's order
        total = SAMPLE_SITES[site]
        sizes[site] = []
        while total > 0:
            state ^= (state << 13) & mask
            state ^= state >> 7
            state ^= (state << 17) & mask
            size = 100 + state % 99901
            if size > total or total - size < 100:
                size = total
            sizes[site].append(size)
            total -= size
    return sizes


def sample_standard_error(sizes, mean):
    """Relative standard error of an unbiased estimate of sum(sizes) from a geometric byte sampler of mean
    `mean`: a block of s bytes is sampled with p = 1 - exp(-s / mean) and weighs s / p, so the variance is
    sum(s^2 (1 - p) / p)."""
    variance = sum(size * size * math.exp(-size / mean) / -math.expm1(-size / mean) for size in sizes)
    return math.sqrt(variance) / sum(sizes)


def sample_estimates(program, work, sample_bytes):
    """One sample-mode run: {site: estimated live bytes} (sites keyed by their innermost program frame)."""
    extra = {"MEMTIDE_TRACE": "sample"}
    if sample_bytes != DEFAULT_SAMPLE_MEAN:
        extra["MEMTIDE_TRACE_SAMPLE"] = str(sample_bytes)
    trace = memtide_raw_trace(program, [], work, 0, extra)
    check(trace["mode"] == "sample" and trace["sample_mean_bytes"] == sample_bytes,
          f"not a sample trace with mean {sample_bytes}", trace["mode"], trace["sample_mean_bytes"])
    estimates = {}
    for key, size, _, _ in raw_trace_sites(trace, {os.path.realpath(program)}):
        estimates[key] = estimates.get(key, 0) + size
    return estimates


def sample_case(work):
    """Sample mode against a known profile (sample_profile.c: 64, 16 and 4 MiB live at exit, in blocks of
    100..100000 bytes).

    The sampler's relative standard error on a site is sample_standard_error(): at the default mean, 512 KiB,
    8.6% for 64 MiB, 17.1% for 16 MiB and 34% for 4 MiB, so a 10% bound fails most runs of the two smaller
    sites whatever the implementation (measured over 100 runs: standard deviations 9.6%, 15.1%, 32.1%,
    mean errors within ±2.3%, i.e. unbiased). The asserted run therefore uses MEMTIDE_TRACE_SAMPLE=16KiB,
    where blocks are still comparable to the mean (most are sampled with p < 1 and weighted) and 10% is at
    least 4.7 standard errors for every site (0.54%, 1.13%, 2.09%); the default mean's run is printed, not
    asserted. MEMTIDE_LEAKS_SAMPLE_RUNS=N repeats both and prints each site's spread."""
    program = os.path.join(ARGS.programs, "sample_profile")
    runs = int(os.environ.get("MEMTIDE_LEAKS_SAMPLE_RUNS", "1"))
    sizes = sample_profile_sizes()
    failures = []
    for mean, asserted in ((ASSERTED_SAMPLE_MEAN, True), (DEFAULT_SAMPLE_MEAN, False)):
        errors = {site: [] for site in SAMPLE_SITES}
        label = f"mean {mean} bytes" + ("" if asserted else " (the default; printed, not asserted)")
        for site in SAMPLE_SITES:
            standard_error = sample_standard_error(sizes[site], mean)
            print(f"{label}: {site}: {len(sizes[site])} blocks, sampler's standard error {standard_error:.2%}")
            if asserted:
                check(SAMPLE_TOLERANCE >= 4 * standard_error,
                      f"the asserted mean gives {site} a standard error of {standard_error:.2%}: a "
                      f"{SAMPLE_TOLERANCE:.0%} bound would be flaky")
        for index in range(runs):
            run_dir = os.path.join(work, f"mean{mean}-run{index}")
            os.mkdir(run_dir)
            estimates = sample_estimates(program, run_dir, mean)
            for site, truth in SAMPLE_SITES.items():
                estimate = estimates.get(site, 0)
                error = (estimate - truth) / truth
                errors[site].append(error)
                line = f"{label}, run {index}: {site}: estimated {estimate} live bytes, truth {truth}, error {error:+.2%}"
                print(line)
                if asserted and abs(error) > SAMPLE_TOLERANCE:
                    failures.append(line)
        if runs > 1:
            for site, values in errors.items():
                mean_error = sum(values) / runs
                spread = (sum((value - mean_error) ** 2 for value in values) / (runs - 1)) ** 0.5
                print(f"{label}: {site}: {runs} runs, mean error {mean_error:+.2%}, standard deviation "
                      f"{spread:.2%}, min {min(values):+.2%}, max {max(values):+.2%}, "
                      f"outside ±{SAMPLE_TOLERANCE:.0%} in {sum(abs(v) > SAMPLE_TOLERANCE for v in values)}")
    check(not failures, f"estimates off by more than {SAMPLE_TOLERANCE:.0%}:", *failures)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--cli", required=True)
    parser.add_argument("--preload", required=True)
    parser.add_argument("--programs", required=True)
    ARGS = parser.parse_args()
    work = tempfile.mkdtemp(prefix=f"memtide-leaks-{ARGS.case}-")
    try:
        needed = ["valgrind"] if not ARGS.case.startswith(("peak.", "sample")) else []
        if ARGS.case.startswith("peak."):
            needed = ["heaptrack", "heaptrack_print", "zstd"]
        missing = [tool for tool in needed if shutil.which(tool) is None]
        if missing:
            raise Skip(f"{', '.join(missing)} not installed (scripts/setup installs {'them' if len(missing) > 1 else 'it'})")
        if ARGS.case not in ("sample_accuracy",) and not cli_has_leak_report():
            raise Failure("`memtide run --help` has no --trace/--leaks: the CLI cannot write leak reports yet")
        if ARGS.case == "sample_accuracy":
            sample_case(work)
        elif ARGS.case == "real_programs":
            real_programs_case(work)
        elif ARGS.case.startswith("peak."):
            peak_case(ARGS.case[len("peak."):], work)
        else:
            leak_case(ARGS.case, work)
    except Skip as skip:
        print(f"SKIPPED leaks.{ARGS.case}: {skip}")
        return SKIP
    except (Failure, subprocess.TimeoutExpired) as failure:
        print(f"FAILED leaks.{ARGS.case}: {failure}")
        if KEEP_DIR:
            print(f"(work folder kept: {work})")
        return 1
    finally:
        if not KEEP_DIR and os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
    print(f"PASSED leaks.{ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

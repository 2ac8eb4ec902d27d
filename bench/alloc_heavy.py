"""Allocation-heavy Python workload, run by scripts/bench (bench/run_bench.py) plain, under libmemtide.so and
under heaptrack: a "real program" whose interpreter allocates and frees small objects at a high rate
(dicts, lists, tuples, strings), as parsers, ETL scripts and build tools do. Deterministic; about 1-2 s plain.

usage: python3 alloc_heavy.py [ROUNDS]
"""

import sys


def records(round_index, count):
    """Builds a list of small dicts with string keys and values, like rows parsed from a file."""
    rows = []
    for i in range(count):
        key = f"user-{round_index}-{i}"
        rows.append({
            "id": i,
            "name": key,
            "tags": [key[-3:], str(i % 17), "x" * (i % 40)],
            "score": (i * 7919) % 1000 / 10.0,
        })
    return rows


def transform(rows):
    """Groups, joins and re-encodes rows: many short-lived strings, tuples and dict resizes."""
    groups = {}
    for row in rows:
        groups.setdefault(row["tags"][1], []).append((row["name"], row["score"]))
    lines = []
    for tag, members in sorted(groups.items()):
        members.sort(key=lambda member: member[1])
        lines.append(tag + ":" + ",".join(name.upper() for name, _ in members[:50]))
    text = "\n".join(lines)
    return len(text.split(",")) + sum(len(members) for members in groups.values())


def churn(round_index):
    """Replaces entries of a live dict, so frees and allocations interleave as in a long-running cache."""
    cache = {}
    total = 0
    for i in range(60000):
        cache[i % 5000] = [str(i)] * (i % 9 + 1) + [bytes(i % 200)]
        if i % 1000 == 0:
            total += sum(len(value) for value in cache.values())
    return total + round_index


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    checksum = 0
    for round_index in range(rounds):
        rows = records(round_index, 40000)
        checksum += transform(rows)
        checksum += churn(round_index)
    print(f"checksum {checksum}")


if __name__ == "__main__":
    main()

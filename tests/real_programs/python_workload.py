"""A Python program whose output is a pure function of its code: run plain and under the preload, the
two runs must print the same bytes (python_test.sh). Exercises what CPython does with malloc:
small objects (pymalloc arenas), big buffers (glibc mmap threshold), dicts that resize, string
building, threads allocating and freeing across each other, a compiled regex, json and hashlib."""

import collections
import gc
import hashlib
import json
import queue
import re
import threading


def words(n, seed):
    # A linear congruential generator: deterministic without depending on random's implementation.
    x = seed
    out = []
    for _ in range(n):
        x = (1103515245 * x + 12345) % (1 << 31)
        out.append("w%x" % (x % 5000))
    return out


def dicts_and_strings():
    counts = collections.Counter(words(200_000, 7))
    table = {}
    for word, count in counts.items():
        table[word] = {"count": count, "upper": word.upper() * (count % 7), "rev": word[::-1]}
    text = " ".join("%s=%d" % (w, table[w]["count"]) for w in sorted(table))
    digest = hashlib.sha256(text.encode()).hexdigest()
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    print("distinct words:", len(table))
    print("top:", top)
    print("text length:", len(text), "sha256:", digest)
    pattern = re.compile(r"w([0-9a-f]{2})([0-9a-f]+)")
    groups = collections.Counter(m.group(1) for m in pattern.finditer(text))
    print("regex groups:", len(groups), "first:", sorted(groups.items())[:3])


def big_buffers():
    # Over glibc's mmap threshold, so these are anonymous mmaps that glibc's free munmaps.
    sizes = [1 << 20, 3 << 20, 17 << 20, 64 << 20]
    total = 0
    for size in sizes:
        buf = bytearray(size)
        buf[::4096] = b"\x01" * len(range(0, size, 4096))
        total += sum(buf[::4096])
        del buf
    grown = b""
    for i in range(2000):
        grown += b"%d," % i  # realloc-driven growth
    print("big buffers touched pages:", total, "grown:", len(grown), hashlib.md5(grown).hexdigest())


def threads():
    # Workers build objects that the main thread frees, and vice versa: cross-thread free.
    inbox, outbox = queue.Queue(), queue.Queue()
    lock = threading.Lock()
    shared = {}

    def worker(index):
        local = 0
        while True:
            item = inbox.get()
            if item is None:
                break
            chunk = [str(item * j) for j in range(200)]
            local += sum(len(s) for s in chunk)
            with lock:
                shared[item] = len(chunk)
            outbox.put(chunk)
        outbox.put(("done", index, local))

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in workers:
        t.start()
    for item in range(2000):
        inbox.put(item)
    for _ in workers:
        inbox.put(None)
    lengths, finished = 0, 0
    while finished < len(workers):
        got = outbox.get()
        if isinstance(got, tuple):
            lengths += got[2]
            finished += 1
        else:
            del got  # freed here, allocated by a worker
    for t in workers:
        t.join()
    print("threads: items", len(shared), "chars", lengths)


def json_round_trip():
    doc = {"k%d" % i: [i, str(i) * 3, {"nested": list(range(i % 13))}] for i in range(20_000)}
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    print("json:", len(text), back == doc, hashlib.sha1(text.encode()).hexdigest())


def cycles():
    class Node:
        pass

    nodes = [Node() for _ in range(50_000)]
    for a, b in zip(nodes, nodes[1:] + nodes[:1]):
        a.next = b
    del nodes, a, b
    print("gc collected at least 50000:", gc.collect() >= 50_000)


dicts_and_strings()
big_buffers()
threads()
json_round_trip()
cycles()
print("ok")

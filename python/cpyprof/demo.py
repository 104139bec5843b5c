"""A small program to profile: a web-log analysis in a few layers.

It generates a synthetic access log, parses it in two worker threads,
scores every request, groups the requests by route in a trie (a recursive
walk), ranks the routes with a recursive merge sort and prints one summary
line. It runs for a second or two and has the shape of real code: a few
layers of functions, a recursive helper, regular expressions, string and
dict builtins, and threads.

    python3 -m cpyprof.demo
    cpyprof record -o demo.cpyprof -- python3 python/cpyprof/demo.py
    cpyprof flame demo.cpyprof -o demo.svg

Options: --lines N (default 60000), --seed S (default 7).
"""
import argparse
import json
import queue
import random
import re
import threading
import time

# --------------------------------------------------------------------------
# generating the log
# --------------------------------------------------------------------------

USERS = ["ada", "grace", "linus", "guido", "barbara", "ken", "dennis", "margaret"]
ROUTES = [
    "/api/items/{id}", "/api/items/{id}/reviews", "/api/search", "/api/users/{id}",
    "/api/users/{id}/orders/{id}", "/static/app.js", "/static/style.css", "/health",
    "/api/cart", "/api/cart/checkout",
]
WORDS = ["red", "blue", "shoe", "lamp", "desk", "mug", "cable", "book", "chair", "pen"]
METHODS = ["GET"] * 8 + ["POST", "DELETE"]


def make_path(rng, route):
    path = route
    while "{id}" in path:
        path = path.replace("{id}", str(rng.randint(1, 5000)), 1)
    if route == "/api/search":
        terms = "+".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
        path += "?q=%s&page=%d" % (terms, rng.randint(1, 9))
    return path


def make_line(rng, second):
    route = rng.choice(ROUTES)
    status = rng.choices([200, 201, 304, 404, 500], weights=[80, 5, 8, 5, 2])[0]
    ms = int(rng.lognormvariate(3.0, 0.9))
    return "2024-05-01T%02d:%02d:%02d %s %s %d %dms user=%s" % (
        second // 3600 % 24, second // 60 % 60, second % 60, rng.choice(METHODS),
        make_path(rng, route), status, ms, rng.choice(USERS))


def generate_log(n_lines, seed):
    rng = random.Random(seed)
    return [make_line(rng, i // 20) for i in range(n_lines)]


# --------------------------------------------------------------------------
# parsing and scoring (in the worker threads)
# --------------------------------------------------------------------------

LINE_RE = re.compile(r"(\S+) (GET|POST|DELETE) (\S+) (\d{3}) (\d+)ms user=(\w+)")
NUMBER_RE = re.compile(r"/\d+")


class Request:
    __slots__ = ("time", "method", "path", "query", "status", "ms", "user", "score")

    def __init__(self, time, method, path, query, status, ms, user):
        self.time, self.method, self.path, self.query = time, method, path, query
        self.status, self.ms, self.user, self.score = status, ms, user, 0.0


def parse_query(text):
    params = {}
    for pair in text.split("&"):
        key, _, value = pair.partition("=")
        params[key] = value.split("+") if key == "q" else value
    return params


def parse_line(line):
    m = LINE_RE.match(line)
    if m is None:
        return None
    when, method, target, status, ms, user = m.groups()
    path, _, query = target.partition("?")
    return Request(when, method, path, parse_query(query) if query else {}, int(status),
                   int(ms), user)


def route_of(path):
    return NUMBER_RE.sub("/{id}", path)


def score(req):
    s = min(req.ms, 2000) / 20.0
    if req.status >= 500:
        s += 50
    elif req.status == 404:
        s += 10
    if req.method != "GET":
        s *= 1.5
    terms = req.query.get("q")
    if terms:
        s += sum(len(t) for t in terms) / len(terms)
    return s


def worker(lines, out):
    parsed = []
    for line in lines:
        req = parse_line(line)
        if req is not None:
            req.score = score(req)
            parsed.append(req)
    out.put(parsed)


# --------------------------------------------------------------------------
# grouping and ranking (main thread)
# --------------------------------------------------------------------------

class Node:
    __slots__ = ("children", "requests")

    def __init__(self):
        self.children = {}
        self.requests = []


def insert(node, parts, req):
    """Recursive insert of a request under its route's path segments."""
    if not parts:
        node.requests.append(req)
        return
    child = node.children.get(parts[0])
    if child is None:
        child = node.children[parts[0]] = Node()
    insert(child, parts[1:], req)


def walk(node, prefix, out):
    """Recursive walk: one (route, requests) pair per node that has requests."""
    if node.requests:
        out.append((prefix or "/", node.requests))
    for name, child in sorted(node.children.items()):
        walk(child, prefix + "/" + name, out)
    return out


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def summarize(route, reqs):
    return {
        "route": route,
        "requests": len(reqs),
        "errors": sum(1 for r in reqs if r.status >= 500),
        "p95_ms": percentile([r.ms for r in reqs], 0.95),
        "score": round(sum(r.score for r in reqs), 1),
    }


def merge_sort(items, key):
    """Recursive merge sort, descending by key."""
    if len(items) <= 1:
        return items
    mid = len(items) // 2
    left, right = merge_sort(items[:mid], key), merge_sort(items[mid:], key)
    merged = []
    i = j = 0
    while i < len(left) and j < len(right):
        if key(left[i]) >= key(right[j]):
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    merged.extend(left[i:])
    merged.extend(right[j:])
    return merged


def analyze(lines):
    results = queue.Queue()
    half = len(lines) // 2
    threads = [threading.Thread(target=worker, args=(chunk, results), name="parser-%d" % i)
               for i, chunk in enumerate((lines[:half], lines[half:]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    requests = []
    while not results.empty():
        requests.extend(results.get())

    root = Node()
    for req in requests:
        insert(root, route_of(req.path).strip("/").split("/"), req)
    table = [summarize(route, reqs) for route, reqs in walk(root, "", [])]
    ranked = merge_sort(table, key=lambda row: row["score"])
    return requests, ranked


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cpyprof.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=60000, help="log lines (default 60000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    lines = generate_log(args.lines, args.seed)
    requests, ranked = analyze(lines)
    report = json.dumps(ranked[:5])
    top = ranked[0]
    print("demo: %d lines, %d requests, %d routes; top %s (%d requests, p95 %d ms); "
          "%d bytes of report in %.2f s" % (len(lines), len(requests), len(ranked),
                                            top["route"], top["requests"], top["p95_ms"],
                                            len(report), time.perf_counter() - t0))


if __name__ == "__main__":
    main()

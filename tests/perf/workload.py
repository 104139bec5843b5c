"""A fixed, deterministic workload for cpyprof's own regression check
(tests/integration/test_self_regression.py).

Run as `python3 tests/perf/workload.py OUT.cpyprof` from the repository root
(with the cpyprof package importable, e.g. PYTHONPATH=build/python): it
profiles `main()` with the Python API (trace mode, no C functions, so only
this file's functions appear) and writes OUT. The call counts depend on
nothing but this file: no hashing of str, no time, no randomness, no I/O.

To accept a change of the counts on purpose, regenerate the baseline:
    PYTHONPATH=build/python python3 tests/perf/workload.py tests/perf/baseline.cpyprof
and commit it with the change that explains it.
"""
import sys


class Tokenizer:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self):
        c = self.peek()
        self.pos += 1
        return c

    def skip_space(self):
        while self.peek() == " ":
            self.take()


def parse_number(t):
    digits = ""
    while t.peek().isdigit():
        digits += t.take()
    return int(digits)


def parse_atom(t):
    t.skip_space()
    if t.peek() == "(":
        t.take()
        v = parse_sum(t)
        t.skip_space()
        t.take()  # ")"
        return v
    return parse_number(t)


def parse_product(t):
    v = parse_atom(t)
    t.skip_space()
    while t.peek() == "*":
        t.take()
        v *= parse_atom(t)
        t.skip_space()
    return v


def parse_sum(t):
    v = parse_product(t)
    t.skip_space()
    while t.peek() == "+":
        t.take()
        v += parse_product(t)
        t.skip_space()
    return v


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def expressions(n):
    for i in range(n):
        yield "(%d + %d) * %d + %d * (1 + %d)" % (i, i + 1, i % 7, i % 3, i)


def main():
    total = 0
    for e in expressions(200):
        total += parse_sum(Tokenizer(e))
    total += fib(15)
    return total


if __name__ == "__main__":
    import cpyprof

    cpyprof.start(sys.argv[1], builtins=False, quiet=True)
    try:
        result = main()
    finally:
        cpyprof.stop()
    print(result)

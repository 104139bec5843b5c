def gen(n):
    for i in range(n):
        yield i * 2


def consume():
    total = 0
    for v in gen(200):
        total += v
    return total


class Box:
    def method(self):
        return [x for x in gen(50)]


print(consume(), len(Box().method()))

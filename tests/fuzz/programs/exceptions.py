def fail(n):
    if n == 0:
        raise ValueError("bottom; with a semicolon\nand a newline")
    return fail(n - 1)


def catch():
    caught = 0
    for i in range(30):
        try:
            fail(i % 5)
        except ValueError:
            caught += 1
    return caught


print(catch())

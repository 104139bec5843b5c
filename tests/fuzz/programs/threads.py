import threading


def work(n):
    return sum(i * i for i in range(n))


ts = [threading.Thread(target=work, args=(2000,), name=f"worker-{i}") for i in range(3)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(work(100))

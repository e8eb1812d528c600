"""Top entries of a py-spy raw (collapsed) profile: self and inclusive shares. Usage: flame_top.py FILE [N]"""

from __future__ import annotations

import sys
from collections import Counter


def short(frame: str) -> str:
    """``func (path/to/file.py:line)`` -> ``func (file.py)``."""
    if " (" not in frame:
        return frame
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].split('/')[-1]})"


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    for line in lines:
        stack, _, count_s = line.rstrip("\n").rpartition(" ")
        count = int(count_s)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].split("/")[-1] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
    print(f"samples {total}")
    print("-- self")
    for name, c in own.most_common(n):
        print(f"{c / total * 100:5.1f}% {name}")
    print("-- inclusive")
    for name, c in incl.most_common(n * 2):
        print(f"{c / total * 100:5.1f}% {name}")


if __name__ == "__main__":
    main()

"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): the functions with the most
samples, inclusive and self. ``python -m bench.profile_summary FILE [--top N] [--filter TEXT]``
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int, needle: str = "") -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame.strip() for frame in stack.split(";") if frame.strip()]
        if needle and not any(needle in frame for frame in frames):
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    lines = [f"{total} samples" + (f" through {needle!r}" if needle else "")]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"\n{title}:")
        for frame, count in counter.most_common(top):
            lines.append(f"  {100 * count / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--filter", default="", help="only stacks with a frame containing this")
    args = parser.parse_args()
    print(summarise(args.file, args.top, args.filter))


if __name__ == "__main__":
    main()

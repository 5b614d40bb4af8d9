#!/usr/bin/env python3
"""Concatenate N copies of a plain recording, each shifted after the previous one in time (recv_ns and trade
`t`), to get a large recording of real trades for `backtest` speed measurements.

usage: scripts/repeat-recording.py IN.jsonl OUT.jsonl N
"""
import json
import re
import sys

src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src) as f:
    header, *lines = f.read().splitlines()
first = json.loads(lines[0])["recv_ns"]
last = json.loads(lines[-1])["recv_ns"]
span_ms = (last - first) // 1_000_000 + 1000
t_re = re.compile(r'"t":(\d+)')
with open(dst, "w") as out:
    out.write(header + "\n")
    for k in range(n):
        shift_ms = k * span_ms
        for line in lines:
            recv, frame = line.split(',"frame":', 1)
            ns = int(recv[len('{"recv_ns":'):]) + shift_ms * 1_000_000
            frame = t_re.sub(lambda m: '"t":%d' % (int(m.group(1)) + shift_ms), frame)
            out.write('{"recv_ns":%d,"frame":%s\n' % (ns, frame))

#!/usr/bin/env python3
"""smaps_sum.py FILE: Rss of a /proc/PID/smaps dump by mapping (file name, [heap], anonymous),
largest first, with the file-backed and anonymous totals (KiB). bench.py's hold phase
writes hold-<subject>.smaps into its work folder."""
import collections
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head

rss = collections.Counter()
anon = collections.Counter()
name = None
with open(sys.argv[1]) as f:
    for line in f:
        parts = line.split()
        if not parts:
            continue
        if not parts[0].endswith(":") or "-" in parts[0]:
            name = parts[5] if len(parts) > 5 else "[anon]"
            continue
        if parts[0] == "Rss:":
            rss[name] += int(parts[1])
        elif parts[0] == "Anonymous:":
            anon[name] += int(parts[1])
total = sum(rss.values())
files = sum(v for k, v in rss.items() if k.startswith("/"))
print(f"total Rss {total} KiB: file-backed mappings {files} KiB "
      f"(of which private-dirty/anonymous {sum(v for k, v in anon.items() if k.startswith('/'))}), "
      f"other {total - files} KiB")
for k, v in rss.most_common():
    if v:
        print(f"{v:8d} {anon[k]:8d}  {k}")

#!/usr/bin/env python3
"""promtext_check.py FILE [FAMILY...] -- checks that FILE is Prometheus text exposition
(format 0.0.4) as a scraper parses it, for test_metrics_text.sh; exits 1 with a FAIL line
naming the first bad line.

  - every line ends in a newline; # HELP and # TYPE at most once a family, the TYPE one
    of counter, gauge, histogram, summary, untyped, and before the family's samples;
  - every sample line is NAME[{LABELS}] VALUE [TIMESTAMP]; its family (NAME, or NAME less
    _bucket/_sum/_count for a histogram) has a # TYPE; label names are valid and not
    repeated, label values use only the escapes \\\\ \\" \\n; VALUE is a float;
  - HELP text uses only the escapes \\\\ and \\n;
  - a histogram's series have a le="+Inf" bucket;
  - each FAMILY given has a # TYPE and at least one sample.
Prints one line: how many families and samples.
"""
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(\{{(?:{LNAME}={LVALUE}(?:,{LNAME}={LVALUE})*,?)?\}})? (\S+)(?: (-?\d+))?$")
LABEL = re.compile(rf"({LNAME})=({LVALUE})")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def fail(msg, n=None, line=None):
    where = f" (line {n}: {line!r})" if n else ""
    print(f"FAIL: {msg}{where}")
    sys.exit(1)


def main():
    path, want = sys.argv[1], sys.argv[2:]
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"not UTF-8: {e}")
    if text and not text.endswith("\n"):
        fail("the last line has no newline")
    types, helps, samples, inf_buckets, series = {}, set(), {}, set(), set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                fam = parts[2]
                if not re.fullmatch(NAME, fam):
                    fail("family name", n, line)
                if parts[1] == "HELP":
                    if fam in helps:
                        fail("a second # HELP", n, line)
                    helps.add(fam)
                    if not re.fullmatch(r"(?:[^\\]|\\[\\n])*", parts[3] if len(parts) > 3 else ""):
                        fail("an escape other than \\\\ and \\n in HELP", n, line)
                else:
                    if fam in types:
                        fail("a second # TYPE", n, line)
                    if fam in samples:
                        fail("# TYPE after the family's samples", n, line)
                    if len(parts) != 4 or parts[3] not in TYPES:
                        fail("type", n, line)
                    types[fam] = parts[3]
            continue
        if not line.strip():
            continue
        m = SAMPLE.match(line)
        if not m:
            fail("not a sample line", n, line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam = name
        if fam not in types:
            for sfx in ("_bucket", "_sum", "_count"):
                base = name[: -len(sfx)]
                if name.endswith(sfx) and types.get(base) in ("histogram", "summary"):
                    fam = base
                    break
        if fam not in types:
            fail(f"no # TYPE for the family of {name}", n, line)
        names = [k for k, _ in LABEL.findall(labels)]
        if len(names) != len(set(names)):
            fail("a label name twice", n, line)
        if (name, labels) in series:
            fail("a series twice", n, line)
        series.add((name, labels))
        try:
            float(value)
        except ValueError:
            fail("value is not a float", n, line)
        samples[fam] = samples.get(fam, 0) + 1
        if name.endswith("_bucket") and 'le="+Inf"' in labels:
            inf_buckets.add(fam)
    for fam, t in types.items():
        if t == "histogram" and samples.get(fam) and fam not in inf_buckets:
            fail(f"histogram {fam} has no le=\"+Inf\" bucket")
    for fam in want:
        if fam not in types:
            fail(f"no # TYPE {fam}")
        if not samples.get(fam):
            fail(f"no sample of {fam}")
    print(f"promtext_check: {len(types)} families, {sum(samples.values())} samples")


if __name__ == "__main__":
    main()

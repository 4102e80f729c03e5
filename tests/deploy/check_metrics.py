#!/usr/bin/env python3
"""check_metrics.py RENDERED_DIR SCRAPE...

Checks that every metric the deployed monitoring names exists in jobrelay's live /metrics:
the PromQL queries of the dashboard (RENDERED_DIR/dashboard.json) and of the alert policies
with a PromQL condition (RENDERED_DIR/alert-*.yaml). SCRAPE files are what GET /metrics
answered, from running jobrelay processes (serve, pull).

- The metric families are the names on the "# TYPE" lines; a histogram NAME exports
  NAME_bucket, NAME_sum and NAME_count, a counter or gauge NAME itself.
- Every metric name a query selects must be exported; so must a query name at least one.
- Every label a query groups by or matches on must be one of the metric's labels in the
  scrapes (the metric must then have samples there), or a label Managed Service for
  Prometheus adds to every series; jobrelay's own `job` label is renamed `exported_job` by
  the scrape (it collides with the target label `job`), so a query must say `exported_job`.

Prints one line per failure and exits 1, or prints what it checked and exits 0.
"""
import glob
import json
import os
import re
import sys

import yaml

# Labels the sidecar's scrape sets on every series (target labels and Cloud Run metadata);
# `le` belongs to histogram buckets and is checked with them.
TARGET_LABELS = {"job", "instance", "namespace", "cluster", "location", "project_id",
                 "service_name", "revision_name", "configuration_name", "instanceId"}
# Prometheus renames an exported label that collides with a target label
RENAMED = {"job": "exported_job", "instance": "exported_instance"}

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan", "atan2"}
AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
                "quantile", "count_values", "group", "limitk", "limit_ratio"}

failures = []


def fail(msg):
    failures.append(msg)


def parse_scrape(text, families, labels):
    """families: name -> type; labels: exported series name -> set of label names."""
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)$", line)
        if m:
            families[m.group(1)] = m.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ", line)
        if not m:
            fail("scrape: a line that is not a sample: %r" % line)
            continue
        names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
        labels.setdefault(m.group(1), set()).update(RENAMED.get(n, n) for n in names)


def exported_names(families):
    out = {}
    for name, typ in families.items():
        if typ == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                out[name + suffix] = name
        elif typ == "summary":
            for suffix in ("", "_sum", "_count"):
                out[name + suffix] = name
        else:
            out[name] = name
    return out


def promql_refs(query):
    """(metric selectors, labels used) of a PromQL expression: each selector is
    (name, labels in its {matchers}); the labels of by/without/on/ignoring/group_* lists are
    returned apart, as they apply to whatever the expression aggregates."""
    q = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', query)  # strings
    q = re.sub(r"\[[^\]]*\]", " ", q)  # range and subquery brackets
    grouping = []
    def take_group(m):
        grouping.extend(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", m.group(2)))
        return " "
    q = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", take_group, q)
    selectors = []
    token = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*|\{[^}]*\}|[0-9][0-9.]*(?:e[+-]?[0-9]+|[smhdwy]+)?|.", re.S)
    toks = [t for t in token.findall(q) if not t.isspace()]
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t.startswith("{"):
            # a selector without a name: {__name__="..."}
            names = re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", t)
            nm = re.search(r'__name__\s*=\s*""', t)
            selectors.append(("" if nm else None, [n for n in names if n != "__name__"]))
        elif re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", t):
            if nxt == "(" or t in KEYWORDS or t in AGGREGATIONS:
                pass  # a function, an aggregation or a keyword
            else:
                matchers = []
                if nxt.startswith("{"):
                    matchers = re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", nxt)
                    i += 1
                selectors.append((t, matchers))
        i += 1
    return selectors, grouping


def queries(out):
    """(where, query) of every PromQL query in the rendered dashboard and alert policies."""
    res = []
    def walk(x, where):
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "prometheusQuery" and isinstance(v, str):
                    res.append((where, v))
                else:
                    walk(v, where)
        elif isinstance(x, list):
            for v in x:
                walk(v, where)
    with open(os.path.join(out, "dashboard.json"), encoding="utf-8") as f:
        walk(json.load(f), "dashboard.json")
    for path in sorted(glob.glob(os.path.join(out, "alert-*.yaml"))):
        with open(path, encoding="utf-8") as f:
            pol = yaml.safe_load(f)
        for cond in pol.get("conditions") or []:
            pq = cond.get("conditionPrometheusQueryLanguage")
            if pq:
                res.append((os.path.basename(path), pq.get("query", "")))
    return res


def main():
    out, scrapes = sys.argv[1], sys.argv[2:]
    families, labels = {}, {}
    for path in scrapes:
        with open(path, encoding="utf-8") as f:
            parse_scrape(f.read(), families, labels)
    if not families:
        fail("the scrapes hold no # TYPE line")
    exported = exported_names(families)
    qs = queries(out)
    if not any(w == "dashboard.json" for w, _ in qs):
        fail("dashboard.json holds no PromQL query")
    used = set()
    for where, q in qs:
        selectors, grouping = promql_refs(q)
        if not selectors:
            fail("%s: %r selects no metric" % (where, q))
        have = set(TARGET_LABELS)
        for name, matchers in selectors:
            if not name:
                fail("%s: %r selects by __name__ or without a name; name the metric" % (where, q))
                continue
            if name not in exported:
                fail("%s: %s is not a metric jobrelay exports (%r)" % (where, name, q))
                continue
            used.add(exported[name])
            series = labels.get(name, set())
            if name.endswith("_bucket") and families.get(exported[name]) == "histogram":
                series = series | {"le"}
            for m in matchers:
                if RENAMED.get(m) in series:
                    fail("%s: %s: %r is the scrape's label; jobrelay's own arrives as %r (%r)" %
                         (where, name, m, RENAMED[m], q))
                elif m not in series and m not in TARGET_LABELS:
                    fail("%s: %s has no label %r in the scrapes (labels: %s) (%r)" %
                         (where, name, m, sorted(series) or "no samples", q))
            have |= series
        for g in grouping:
            if RENAMED.get(g) in have:
                fail("%s: groups by %r, the scrape's label; jobrelay's own arrives as %r (%r)" %
                     (where, g, RENAMED[g], q))
            elif g not in have:
                fail("%s: groups by %r, which none of its metrics has in the scrapes (%r)" % (where, g, q))
    for f in failures:
        print("FAIL: " + f)
    if failures:
        return 1
    print("ok: %d queries name %d of the %d metric families jobrelay exports: %s" %
          (len(qs), len(used), len(families), " ".join(sorted(used))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

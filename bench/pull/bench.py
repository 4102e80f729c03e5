#!/usr/bin/env python3
"""bench.py: the pull benchmark's driver (bench/pull/run.sh builds what it needs and calls it).

For each subscriber (jobrelay pull, the Node reference peer, and the Go
ack-only baseline) on loopback only:

  throughput  a fresh emulator (bench/pull/emu) with --count events published
              before the subscriber starts, a fresh Run API fake (not
              recording); the subscriber is started and runs until the
              emulator says every message was acknowledged. Reported: wall time
              from exec to the last ack, messages/s over that time, the
              subscriber's CPU (getrusage of the child: user+system, start-up
              and shutdown included) per message, its peak RSS, and the CPU of
              the emulator (its getrusage between LISTENING and ACKED) and of
              the fake (cpu.sinceListening of its stats file).
  cold start  --cold-reps runs with a few messages and the fake recording:
              time from just before exec to the arrival time of the first
              RunJob in the fake's record (median of the runs).
  hold        the fake answers RunJob only after --hold-delay-ms, so the
              subscriber holds its flow-control limit (1,000 messages); RSS is
              sampled from /proc for --hold-window seconds after the emulator
              saw 1,000 messages outstanding (the largest sample is reported).
  hold-port   the same, with jobrelay's health port open (pull --port 0 on
              127.0.0.1), as on Cloud Run, where $PORT is always set.

With --check, the run exits 3 when jobrelay misses a target it was measured
against (cold start --target-cold-ms, RSS with 1,000 outstanding
--target-rss-mib, with and without the health port), so a regression fails.
  safety      the first cold-start run of each subscriber runs under
              `strace -f -e trace=connect`; any connect() to an address other
              than 127.0.0.1 or ::1 fails the benchmark.

Every process it starts is in its own process group, gets SIGTERM when this
script dies (PR_SET_PDEATHSIG), and is ended (SIGTERM, then SIGKILL) on exit.
Every wait has a time limit; the whole run has --deadline seconds.
"""
import argparse
import ctypes
import datetime
import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

STARTED = []  # Popen objects to clean up
DEADLINE = None


class BenchError(Exception):
    pass


def remaining(limit):
    """The time left for a wait of at most limit seconds, within the global deadline."""
    left = DEADLINE - time.monotonic()
    if left <= 0:
        raise BenchError("the benchmark ran past its --deadline")
    return min(limit, left)


def _child_setup():
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv, env=None, stdout=subprocess.PIPE, stderr=None, stdin=subprocess.DEVNULL):
    """Starts a process in its own group; returns (Popen, time.time() taken just before the exec)."""
    t0 = time.time()
    p = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, stdin=stdin,
                         start_new_session=True, preexec_fn=_child_setup)
    STARTED.append(p)
    return p, t0


def stop(p, sig=signal.SIGTERM, grace=10.0):
    """Signals p's process group, waits up to grace seconds, then SIGKILLs it; returns rusage or None."""
    if p.returncode is not None:
        return None
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
    end = time.monotonic() + grace
    while True:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(st)
            return ru
        if time.monotonic() > end:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            pid, st, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(st)
            return ru
        time.sleep(0.02)


def cleanup():
    for p in reversed(STARTED):
        if p.returncode is None:
            stop(p, grace=3.0)


class Lines:
    """Reads a child's stdout line by line with time limits."""

    def __init__(self, p, name):
        self.p, self.name, self.buf = p, name, b""
        os.set_blocking(p.stdout.fileno(), False)

    def wait_for(self, prefix, limit):
        end = time.monotonic() + remaining(limit)
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode(errors="replace").strip()
                if text.startswith(prefix):
                    return text, time.time()
            left = end - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no '{prefix}' line within {limit:.0f} s")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise BenchError(f"{self.name}: exited (status {self.p.wait()}) before '{prefix}' "
                                     f"(its stderr is in the work folder)")
                self.buf += chunk


def cpu_us(line):
    m = re.search(r"cpu_us=(\d+)", line)
    return int(m.group(1)) if m else None


class Env:
    def __init__(self, a):
        self.a = a
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("GOOGLE_", "PUBSUB_", "JOBRELAY_", "GCE_", "METADATA_"))}
        base.update(METADATA_SERVER_DETECTION="none", GCE_METADATA_HOST="127.0.0.1:9")
        self.base = base

    def start_emu(self, tag, count, expect=0, hold=0, maxmsgs=0, mode=None):
        a = self.a
        stats = os.path.join(a.work, f"emu-{tag}.stats.json")
        argv = [a.emu, "-events", a.events, "-count", str(count), "-expect", str(expect or count),
                "-stats", stats, "-exit-on-stdin-close", "-batch", str(a.batch), "-mode", mode or a.emu_mode]
        if hold:
            argv += ["-hold", str(hold)]
        if maxmsgs:
            argv += ["-max", str(maxmsgs)]
        err = open(os.path.join(a.work, f"emu-{tag}.err"), "w")
        p, _ = spawn(argv, env=self.base, stderr=err, stdin=subprocess.PIPE)
        lines = Lines(p, f"emulator ({tag})")
        line, _ = lines.wait_for("LISTENING ", 60)
        port = int(line.split()[1])
        return p, lines, port, cpu_us(line), stats

    def start_fake(self, tag, record=False, delay_ms=0):
        a = self.a
        stats = os.path.join(a.work, f"fake-{tag}.stats.json")
        rec = os.path.join(a.work, f"fake-{tag}.record.jsonl")
        argv = [a.node, os.path.join(a.fake, "server.js"), "--port", "0", "--stats", stats,
                "--exit-on-stdin-close"]
        if record:
            if os.path.exists(rec):
                os.unlink(rec)
            argv += ["--record", rec]
        if delay_ms:
            argv += ["--delay-ms", str(delay_ms)]
        err = open(os.path.join(a.work, f"fake-{tag}.err"), "w")
        p, _ = spawn(argv, env=self.base, stderr=err, stdin=subprocess.PIPE)
        line, _ = Lines(p, f"Run API fake ({tag})").wait_for("LISTENING ", 60)
        return p, int(line.split()[1]), stats, rec

    def subject_argv(self, name, wrap=False, port=False):
        a = self.a
        if name == "jobrelay":
            pre = a.wrap.split() if wrap and a.wrap else []
            health = ["--port", "0", "--bind", "127.0.0.1"] if port else []
            return pre + [a.jobrelay, "--config", a.config] + a.jobrelay_args.split() + ["pull"] + health
        if name == "node-ref":
            return [a.node22, os.path.join(a.peer_dir, "peer.js")]
        if name in ("ack-only", "ack-only-stock"):
            return [a.acksub, "-sub", "jobrelay", "-max-messages", "1000"]
        raise ValueError(name)

    def subject_env(self, emu_port, fake_port):
        e = dict(self.base)
        e.update(PUBSUB_EMULATOR_HOST=f"127.0.0.1:{emu_port}",
                 JOBRELAY_RUN_ENDPOINT=f"127.0.0.1:{fake_port}",
                 RUN_ENDPOINT=f"127.0.0.1:{fake_port}")
        return e


def read_json(path, limit=10):
    end = time.monotonic() + limit
    while not os.path.exists(path):  # written by the process we just stopped and reaped
        if time.monotonic() > end:
            raise BenchError(f"{path} was not written")
        time.sleep(0.02)
    with open(path) as f:
        return json.load(f)


def fake_cpu(stats_path):
    s = read_json(stats_path)
    return s["cpu"]["sinceListening"]["totalMicros"], s


def rss_kib(pid):
    """VmRSS and VmHWM of pid (KiB), from /proc."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def throughput(env, name):
    a = env.a
    tag = f"tp-{name}"
    count = a.stock_count if name == "ack-only-stock" else a.count
    emu, lines, eport, ecpu0, estats = env.start_emu(tag, count, maxmsgs=1000 if name == "ack-only" else 0,
                                                     mode="stock" if name == "ack-only-stock" else None)
    fake, fport, fstats, _ = env.start_fake(tag)
    out = open(os.path.join(a.work, f"{tag}.out"), "w")
    err = open(os.path.join(a.work, f"{tag}.err"), "w")
    p, t0 = spawn(env.subject_argv(name, wrap=True), env=env.subject_env(eport, fport), stdout=out, stderr=err)
    line, t1 = lines.wait_for("ACKED ", a.timeout)
    ecpu1 = cpu_us(line)
    hwm = rss_kib(p.pid)["VmHWM"]
    ru = stop(p)
    stop(emu)
    stop(fake)
    fcpu, fs = fake_cpu(fstats)
    es = read_json(estats)
    wall = t1 - t0
    cpu = (ru.ru_utime + ru.ru_stime) * 1e6
    return {
        "count": count, "wall_s": wall, "msgs_per_s": count / wall, "cpu_us_per_msg": cpu / count,
        "cpu_s": cpu / 1e6, "peak_rss_kib": max(hwm, ru.ru_maxrss), "exit": p.returncode,
        "emu_cpu_us_per_msg": (ecpu1 - ecpu0) / count, "fake_cpu_us_per_msg": fcpu / count,
        "fake_calls": fs["calls"], "fake_runjob": fs.get("byMethod", {}).get("RunJob", {}).get("total", 0),
        "emu": {k: es[k] for k in ("delivered", "acked", "nacked", "modacks", "maxOutstanding",
                                     "redeliveredMessages", "responses")},
    }


def parse_iso(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def connects(strace_file):
    """Addresses a strace -e trace=connect log connected to (AF_INET/AF_INET6)."""
    addrs = set()
    with open(strace_file) as f:
        for line in f:
            if "connect(" not in line:
                continue
            m = re.search(r'sin_addr=inet_addr\("([^"]+)"\)', line)
            if m:
                addrs.add(m.group(1))
            m = re.search(r'inet_pton\(AF_INET6, "([^"]+)"', line)
            if m:
                addrs.add(m.group(1))
    return addrs


def cold_start(env, name, rep, trace):
    a = env.a
    tag = f"cold-{name}-{rep}"
    n = a.cold_count
    emu, lines, eport, _, _ = env.start_emu(tag, n)
    fake, fport, fstats, rec = env.start_fake(tag, record=True)
    argv = env.subject_argv(name)
    st = None
    if trace:
        st = os.path.join(a.work, f"{tag}.strace")
        argv = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", st] + argv
    out = open(os.path.join(a.work, f"{tag}.out"), "w")
    err = open(os.path.join(a.work, f"{tag}.err"), "w")
    p, t0 = spawn(argv, env=env.subject_env(eport, fport), stdout=out, stderr=err)
    lines.wait_for("ACKED ", a.timeout)
    stop(p)
    stop(emu)
    stop(fake)
    with open(rec) as f:
        first = json.loads(f.readline())
    res = {"cold_ms": (parse_iso(first["time"]) - t0) * 1000}
    if st:
        bad = {x for x in connects(st) if x not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")}
        res["connects"] = sorted(connects(st))
        if bad:
            raise BenchError(f"{name} connected to {sorted(bad)} (only loopback is allowed); see {st}")
    return res


def hold(env, name, port=False):
    a = env.a
    tag = f"hold{'-port' if port else ''}-{name}"
    emu, lines, eport, _, _ = env.start_emu(tag, a.hold_count, expect=a.hold_count, hold=1000)
    fake, fport, _, _ = env.start_fake(tag, delay_ms=a.hold_delay_ms)
    out = open(os.path.join(a.work, f"{tag}.out"), "w")
    err = open(os.path.join(a.work, f"{tag}.err"), "w")
    p, _ = spawn(env.subject_argv(name, port=port), env=env.subject_env(eport, fport), stdout=out, stderr=err)
    lines.wait_for("OUTSTANDING ", 60)
    end = time.monotonic() + a.hold_window
    rss = hwm = 0
    while time.monotonic() < end:  # sampling window, not a synchronisation
        r = rss_kib(p.pid)
        rss, hwm = max(rss, r["VmRSS"]), max(hwm, r["VmHWM"])
        time.sleep(0.05)
    smaps = os.path.join(a.work, f"{tag}.smaps")  # where the memory is, at the end of the window
    try:
        with open(f"/proc/{p.pid}/smaps") as f, open(smaps, "w") as o:
            o.write(f.read())
    except OSError:
        pass
    stop(p, grace=a.hold_delay_ms / 1000 + 10)
    stop(emu)
    stop(fake)
    es = read_json(os.path.join(a.work, f"emu-{tag}.stats.json"))
    return {"rss_kib": rss, "hwm_kib": hwm, "max_outstanding": es["maxOutstanding"], "acked": es["acked"]}


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "MiB":
        return f"{v / 1024:.1f}"
    if unit in ("ms", "µs"):
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    return f"{v:.0f}"


def ROWS(a):
    """The table's rows: label, key path, unit, target for jobrelay (at most), checked by --check."""
    return [
        ("cold start, exec to first RunJob", ("cold", "median_ms"), "ms", a.target_cold_ms, True),
        ("messages/s, exec to last ack", ("tp", "msgs_per_s"), "msg/s", None, False),
        ("CPU per message", ("tp", "cpu_us_per_msg"), "µs", 30, False),
        (f"peak RSS, {a.count} messages", ("tp", "peak_rss_kib"), "MiB", None, False),
        ("RSS, 1,000 messages outstanding", ("hold", "rss_kib"), "MiB", a.target_rss_mib * 1024, True),
        ("  the same, health port open", ("hold-port", "rss_kib"), "MiB", a.target_rss_mib * 1024, True),
    ]


def misses(res, a):
    """The checked targets jobrelay was measured against and missed, as text."""
    j, out = res.get("jobrelay", {}), []
    for label, key, unit, target, checked in ROWS(a):
        v = j.get(key[0], {}).get(key[1])
        if checked and target is not None and v is not None and v > target:
            out.append(f"{label.strip()}: {fmt(v, unit)} {unit} > {fmt(target, unit)}")
    return out


def table(res, a):
    j, n, b = res.get("jobrelay", {}), res.get("node-ref", {}), res.get("ack-only", {})
    bs = res.get("ack-only-stock", {})

    def ratio(x, y):
        if not x or not y:
            return "-"
        return f"{x / y:.1f}x" if x / y >= 0.1 else f"{x / y:.3f}x"

    rows = ROWS(a)
    get = lambda d, k: d.get(k[0], {}).get(k[1]) if d else None
    print()
    print(f"pull benchmark: {a.count} CloudEvents pre-published, loopback, flow control 1,000, "
          f"{os.cpu_count()} cores")
    hdr = f"{'':40} {'jobrelay':>10} {'node-ref':>10} {'ref/jobrelay':>13} {'target':>9} {'':4}"
    print(hdr)
    print("-" * len(hdr))
    for label, key, unit, target, _ in rows:
        jv, nv = get(j, key), get(n, key)
        r = ratio(nv, jv)
        tgt, ok = "", ""
        if target is not None:
            tgt = f"<= {fmt(target, unit)}"
            ok = "ok" if jv is not None and jv <= target else ("MISS" if jv is not None else "")
        print(f"{label + ' (' + unit + ')':40} {fmt(jv, unit):>10} {fmt(nv, unit):>10} {r:>13} {tgt:>9} {ok:4}")
    print()
    print(f"what else ran (per message while each subscriber drained the {a.count}; "
          f"stock pstest: {a.stock_count}; emulator mode {a.emu_mode}):")
    hdr2 = f"{'':40} {'jobrelay':>10} {'node-ref':>10} {'ack-only':>10} {'ack-only, stock pstest':>23}"
    print(hdr2)
    print("-" * len(hdr2))
    for label, key, unit in [
        ("subscriber CPU (µs/msg)", "cpu_us_per_msg", "µs"),
        ("emulator CPU (µs/msg)", "emu_cpu_us_per_msg", "µs"),
        ("Run API fake CPU (µs/msg)", "fake_cpu_us_per_msg", "µs"),
        ("messages/s", "msgs_per_s", "msg/s"),
        ("wall time (s)", "wall_s", "s"),
    ]:
        vals = [get(d, ("tp", key)) for d in (j, n, b, bs)]
        cells = [("-" if v is None else (f"{v:.2f}" if unit == "s" else fmt(v, unit))) for v in vals]
        print(f"{label:40} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10} {cells[3]:>23}")
    print()
    for name in ("jobrelay", "node-ref", "ack-only", "ack-only-stock"):
        d = res.get(name)
        if not d:
            continue
        tp = d.get("tp", {})
        e = tp.get("emu", {})
        extra = ""
        if "cold" in d:
            extra = f"; cold starts (ms): {', '.join(f'{x:.0f}' for x in d['cold']['all_ms'])}"
            if d["cold"].get("connects") is not None:
                extra += f"; connect() targets: {', '.join(d['cold']['connects']) or 'none'}"
        for ph in ("hold", "hold-port"):
            if ph in d:
                extra += f"; {ph}: {d[ph]['max_outstanding']} outstanding, VmHWM {d[ph]['hwm_kib'] / 1024:.1f} MiB"
        print(f"{name}: RunJob {tp.get('fake_runjob', '-')}, acked {e.get('acked')}, nacked {e.get('nacked')}, "
              f"redelivered {e.get('redeliveredMessages')}, max outstanding {e.get('maxOutstanding')}, "
              f"exit {tp.get('exit')}{extra}")


def main():
    global DEADLINE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobrelay", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--emu", required=True)
    ap.add_argument("--acksub", required=True)
    ap.add_argument("--node", default="node", help="Node for the Run API fake")
    ap.add_argument("--node22", required=True, help="Node 22 binary for the reference peer")
    ap.add_argument("--peer-dir", required=True)
    ap.add_argument("--fake", required=True, help="tests/peers/runfake")
    ap.add_argument("--events", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--cold-reps", type=int, default=5)
    ap.add_argument("--cold-count", type=int, default=20)
    ap.add_argument("--hold-count", type=int, default=2000)
    ap.add_argument("--hold-delay-ms", type=int, default=20000)
    ap.add_argument("--hold-window", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=300, help="limit for one subscriber to drain")
    ap.add_argument("--deadline", type=float, default=900, help="limit for the whole run")
    ap.add_argument("--subjects", default="jobrelay,node-ref,ack-only,ack-only-stock",
                    help="ack-only-stock: the ack-only baseline against stock pstest (-mode stock), --stock-count messages")
    ap.add_argument("--stock-count", type=int, default=500)
    ap.add_argument("--emu-mode", default="own", choices=["own", "pstest"], help="the emulator's -mode")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--jobrelay-args", default="", help="more global flags for jobrelay, e.g. '--log-level warning'")
    ap.add_argument("--phases", default="tp,cold,hold,hold-port",
                    help="which of tp (throughput), cold, hold, hold-port (jobrelay only) to run")
    ap.add_argument("--target-cold-ms", type=float, default=50, help="cold start target (median, ms)")
    ap.add_argument("--target-rss-mib", type=float, default=24, help="RSS target with 1,000 outstanding (MiB)")
    ap.add_argument("--check", action="store_true", help="exit 3 when jobrelay misses the cold start or RSS target")
    ap.add_argument("--wrap", help="run jobrelay's throughput run under this command, e.g. "
                    "'perf record -g -o FILE --' (its CPU and RSS then include the wrapper's)")
    a = ap.parse_args()
    DEADLINE = time.monotonic() + a.deadline
    os.makedirs(a.work, exist_ok=True)
    env = Env(a)
    res = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        for name in a.subjects.split(","):
            d = res.setdefault(name, {})
            phases = a.phases.split(",")
            if "tp" in phases:
                n = a.stock_count if name == "ack-only-stock" else a.count
                print(f"bench: {name}: throughput, {n} messages", file=sys.stderr, flush=True)
                d["tp"] = throughput(env, name)
            if name.startswith("ack-only"):
                continue
            if "cold" in phases and a.cold_reps > 0:
                print(f"bench: {name}: cold start x{a.cold_reps} (first under strace)", file=sys.stderr, flush=True)
                runs = [cold_start(env, name, i, trace=(i == 0)) for i in range(a.cold_reps)]
                timed = runs[1:] if len(runs) > 1 else runs  # the strace'd run is slower
                d["cold"] = {"median_ms": statistics.median(r["cold_ms"] for r in timed),
                             "all_ms": [r["cold_ms"] for r in runs], "connects": runs[0].get("connects")}
            if "hold" in phases:
                print(f"bench: {name}: RSS with 1,000 messages outstanding", file=sys.stderr, flush=True)
                d["hold"] = hold(env, name)
            if "hold-port" in phases and name == "jobrelay":
                print(f"bench: {name}: the same with the health port open", file=sys.stderr, flush=True)
                d["hold-port"] = hold(env, name, port=True)
    except BenchError as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        cleanup()
        if res:
            table(res, a)
        return 1
    finally:
        cleanup()
    table(res, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": res}, f, indent=2)
    missed = misses(res, a)
    for m in missed:
        print(f"bench: jobrelay MISSED {m}", file=sys.stderr)
    return 3 if a.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())

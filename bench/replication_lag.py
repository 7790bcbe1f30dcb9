#!/usr/bin/env python3
"""Continuous replication under a steady churn: `poolsync service` (watching)
against an rsync loop (`rsync -a --delete` every second) on the same pool, the
same churn and the same measurement, in one run, as ratios.

  bench/replication_lag.py [--kind small|tiny] [--rate N] [--seconds S] [--idle S]

  --kind     the dataset of make_dataset.py (default small: 100,000 items)
  --rate     changes a second (default 100)
  --seconds  how long the churn runs (default 60)
  --idle     how long the idle service is measured first (default 30)

The churn (the same seeded sequence for both) rewrites a 4 KiB region of a
random item (80%), adds an item (10%) or deletes one (10%), at a steady rate.

Lag: an `inotifywait` on the replica stamps when each path arrives there (the
rename into place of a copy, or the deletion); a change's lag is the time from
the churn's write to the first arrival of its path after it. Changes that never
arrive within the drain time (10 s) are counted as lost.

CPU and bytes: the service's own (from /proc/PID/stat and /proc/PID/io while
the churn runs, drain included); the rsync loop's from getrusage(CHILDREN)
around it (every rsync process it ran). Bytes are what the processes caused
to be written to storage (write_bytes, ru_oublock).

Needs: a release build (target/release/poolsync or $POOLSYNC), rsync,
inotifywait (Debian's inotify-tools), python3.
"""

import argparse
import bisect
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODULE = "UserServices.PresenceFocus"
POOLSYNC = os.environ.get("POOLSYNC", os.path.join(REPO, "target/release/poolsync"))
TICK = os.sysconf("SC_CLK_TCK")
DRAIN = 10.0


def log(msg):
    print(time.strftime("[%H:%M:%S]"), msg, file=sys.stderr, flush=True)


def need(tool):
    if shutil.which(tool) is None:
        sys.exit(f"replication_lag.py: '{tool}' is missing")


class Arrivals:
    """inotifywait on a replica folder: when each path last arrived, in order."""

    def __init__(self, folder):
        self.times = {}
        self.proc = subprocess.Popen(
            ["inotifywait", "-m", "-r", "-q", "-e", "moved_to,delete,close_write",
             "--format", "%w%f", folder],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.folder = folder.rstrip("/") + "/"
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(3)  # the recursive watches of 100,000 items' folders

    def _read(self):
        for line in self.proc.stdout:
            now = time.monotonic()
            path = line.rstrip("\n")
            if path.startswith(self.folder):
                rel = path[len(self.folder):]
                # Staged names (rsync's .name.XXXXXX) are not the item.
                self.times.setdefault(rel, []).append(now)

    def first_after(self, rel, t):
        times = self.times.get(rel, [])
        i = bisect.bisect_left(times, t)
        return times[i] if i < len(times) else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Churn:
    """The seeded churn over the items of `folder`."""

    def __init__(self, folder, seed=11):
        self.folder = folder
        self.rng = random.Random(seed)
        self.items = sorted(
            os.path.relpath(os.path.join(d, f), folder)
            for d, _, files in os.walk(folder) for f in files)
        self.added = 0

    def one(self):
        r = self.rng.random()
        if r < 0.8 or len(self.items) < 10:
            rel = self.items[self.rng.randrange(len(self.items))]
            path = os.path.join(self.folder, rel)
            with open(path, "r+b") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(self.rng.randrange(max(1, size - 4096 + 1)) if size > 4096 else 0)
                f.write(self.rng.randbytes(min(4096, max(size, 1))))
            return rel
        if r < 0.9:
            self.added += 1
            # Into an existing folder: a new folder's first items can beat
            # inotifywait's watch of it, for either tool.
            near = self.items[self.rng.randrange(len(self.items))]
            rel = os.path.join(os.path.dirname(near), f"new-{self.added}")
            path = os.path.join(self.folder, rel)
            with open(path, "wb") as f:
                f.write(self.rng.randbytes(2048))
            self.items.append(rel)
            return rel
        rel = self.items.pop(self.rng.randrange(len(self.items)))
        os.unlink(os.path.join(self.folder, rel))
        return rel

    def run(self, rate, seconds):
        """Makes `rate` changes a second for `seconds`; (path, time) of each."""
        done = []
        start = time.monotonic()
        n = int(rate * seconds)
        for i in range(n):
            due = start + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            rel = self.one()
            done.append((rel, time.monotonic()))
        return done


def lags(changes, arrivals, deadline):
    """Each change's lag in seconds, and how many never arrived."""
    out, lost = [], 0
    for rel, t in changes:
        a = arrivals.first_after(rel, t)
        if a is None or a > deadline:
            lost += 1
        else:
            out.append(a - t)
    return sorted(out), lost


def pct(values, p):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def wait_drained(changes, arrivals):
    """Waits until every change has arrived, or DRAIN seconds."""
    until = time.monotonic() + DRAIN
    while time.monotonic() < until:
        if all(arrivals.first_after(rel, t) is not None for rel, t in changes[-200:]):
            time.sleep(1)
            return
        time.sleep(0.2)


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_written(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def deployment(top):
    text = subprocess.run(
        ["bash", "-c", f'source "{HERE}/lib.sh"; pair_deployment "$1" "$2"', "-",
         os.path.join(top, "stores/a"), os.path.join(top, "stores/b")],
        check=True, capture_output=True, text=True).stdout
    path = os.path.join(top, "deployment.toml")
    with open(path, "w") as f:
        f.write(text + "[backup_service]\nsync_interval = \"00:02:00\"\n")
    return path


def measure_service(top, dep, source, replica, args):
    env = dict(os.environ, XDG_DATA_HOME=top, XDG_STATE_HOME=top, XDG_CONFIG_HOME=top)
    arrivals = Arrivals(replica)
    err = open(os.path.join(top, "service.log"), "w")
    svc = subprocess.Popen([POOLSYNC, "--deployment", dep, "service"], stderr=err, env=env)
    while "scan=\"full\"" not in open(os.path.join(top, "service.log")).read():
        time.sleep(0.2)
    log(f"service up; idle for {args.idle} s")
    c0 = proc_cpu(svc.pid)
    time.sleep(args.idle)
    idle = (proc_cpu(svc.pid) - c0) / args.idle
    log(f"churn: {args.rate}/s for {args.seconds} s")
    c0, w0 = proc_cpu(svc.pid), proc_written(svc.pid)
    changes = Churn(source).run(args.rate, args.seconds)
    wait_drained(changes, arrivals)
    cpu, written = proc_cpu(svc.pid) - c0, proc_written(svc.pid) - w0
    deadline = time.monotonic()
    svc.send_signal(signal.SIGTERM)
    svc.wait()
    arrivals.stop()
    lag, lost = lags(changes, arrivals, deadline)
    return dict(lag=lag, lost=lost, cpu=cpu, written=written, changes=len(changes), idle=idle)


def rsync_loop(source, dest, stop):
    while not stop.is_set():
        started = time.monotonic()
        subprocess.run(["rsync", "-a", "--delete", source + "/", dest + "/"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rest = 1.0 - (time.monotonic() - started)
        if rest > 0:
            stop.wait(rest)


def measure_rsync(top, source, args):
    dest = os.path.join(top, "rsync-replica")
    subprocess.run(["rsync", "-a", "--delete", source + "/", dest + "/"], check=True)
    arrivals = Arrivals(dest)
    stop = threading.Event()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    loop = threading.Thread(target=rsync_loop, args=(source, dest, stop))
    loop.start()
    log(f"rsync loop; churn: {args.rate}/s for {args.seconds} s")
    changes = Churn(source, seed=12).run(args.rate, args.seconds)
    wait_drained(changes, arrivals)
    deadline = time.monotonic()
    stop.set()
    loop.join()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    arrivals.stop()
    lag, lost = lags(changes, arrivals, deadline)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return dict(lag=lag, lost=lost, cpu=cpu, written=(r1.ru_oublock - r0.ru_oublock) * 512,
                changes=len(changes))


def report(svc, rs, seconds):
    def row(name, r):
        span = seconds + DRAIN
        return (f"| {name} | {pct(r['lag'], 50):.2f} | {pct(r['lag'], 99):.2f} | "
                f"{(r['lag'][-1] if r['lag'] else float('nan')):.2f} | {r['lost']} | "
                f"{r['cpu']:.1f} | {100 * r['cpu'] / span:.1f}% | {r['written'] / r['changes'] / 1024:.1f} |")
    print("| | lag p50 (s) | lag p99 (s) | lag max (s) | lost | CPU (s) | CPU share | KiB written / change |")
    print("|---|---|---|---|---|---|---|---|")
    print(row("poolsync service", svc))
    print(row("rsync -a --delete every second", rs))
    print()
    print(f"idle service CPU: {100 * svc['idle']:.2f}% of a core")
    print(f"rsync loop / service: CPU {rs['cpu'] / max(svc['cpu'], 1e-9):.1f}x, "
          f"lag p99 {pct(rs['lag'], 99) / pct(svc['lag'], 99):.1f}x, "
          f"bytes written {rs['written'] / max(svc['written'], 1):.1f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", default="small", choices=["small", "tiny"])
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--idle", type=float, default=30)
    args = p.parse_args()
    for tool in ("rsync", "inotifywait"):
        need(tool)
    if not os.access(POOLSYNC, os.X_OK):
        sys.exit(f"replication_lag.py: no poolsync binary at {POOLSYNC}: cargo build --release")
    top = tempfile.mkdtemp(prefix="poolsync-lag.")
    try:
        source = os.path.join(top, "stores/a/data", MODULE)
        replica = os.path.join(top, "stores/b/backup/a.bench.com", MODULE)
        os.makedirs(os.path.join(top, "stores/b/data", MODULE))
        log(f"dataset {args.kind}")
        subprocess.run([sys.executable, os.path.join(HERE, "make_dataset.py"), "generate",
                        args.kind, source], check=True)
        dep = deployment(top)
        env = dict(os.environ, XDG_DATA_HOME=top, XDG_STATE_HOME=top, XDG_CONFIG_HOME=top)
        subprocess.run([POOLSYNC, "--deployment", dep, "-c",
                        'invoke_backup_service_sync("a.bench.com").items_copied'],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        svc = measure_service(top, dep, source, replica, args)
        rs = measure_rsync(top, source, args)
        report(svc, rs, args.seconds)
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()

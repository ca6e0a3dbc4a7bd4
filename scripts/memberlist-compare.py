#!/usr/bin/env python3
"""Crash detection of Chorus and hashicorp/memberlist side by side, one process per node on
127.0.0.1 (docs/membership.md, "Side by side with memberlist"; run through
scripts/memberlist-compare.sh, which builds both).

For each system and size: start N nodes (memberlist's LAN defaults; `chorus peer
--membership-only` with the `lan` profile, both probing every second), wait until every node
lists every other, then run CYCLES cycles of: a graceful leave (SIGTERM), a new node joining,
GAP seconds, a crash (SIGKILL) of a random older node. A crash is seen by all when every live
node has logged it failed (or never listed it); the time is taken from the nodes' own event
logs, so polling does not load the machine. Writes DIR/crashes.csv (one row per crash) and
prints, per system and size, the median and worst time to first detection and to seen by all.
"""
import argparse
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime


def now_ms():
    return time.time() * 1000


class Node:
    def __init__(self, name, port, process, log):
        self.name, self.port, self.process, self.log = name, port, process, log
        self.id = name  # how other nodes' logs name this one


class Cluster:
    """What both systems share: nodes started and stopped, and their logged events."""

    def __init__(self, out, base_port):
        self.out, self.base_port, self.nodes, self.live, self.started = out, base_port, [], [], 0
        os.makedirs(out, exist_ok=True)

    def next_port(self):
        self.started += 1
        return self.base_port + self.started - 1

    def add(self, node):
        self.nodes.append(node)
        self.live.append(node)
        return node

    def events(self, node):
        """(ms, kind, subject) from a node's log, kind in alive/failed/left."""
        with open(node.log) as f:
            return [event for event in map(self.parse, f) if event]

    def parse(self, line):
        raise NotImplementedError

    def leave(self, node):
        node.process.send_signal(signal.SIGTERM)
        try:
            node.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.process.kill()
        self.live.remove(node)

    def crash(self, node):
        node.process.kill()
        node.process.wait()
        self.live.remove(node)

    def stop_all(self):
        for node in self.live:
            node.process.kill()
        for node in self.live:
            node.process.wait()
        self.live = []

    def lists_everyone(self):
        names = {n.id for n in self.live}
        for node in self.live:
            state = {}
            for _, kind, subject in self.events(node):
                state[subject] = kind
            if {s for s, k in state.items() if k == "alive"} | {node.id} != names:
                return False
        return True


class Memberlist(Cluster):
    def __init__(self, out, base_port, binary):
        super().__init__(out, base_port)
        self.binary = binary

    def start(self, join):
        port = self.next_port()
        name = f"n{self.started}"
        log = open(os.path.join(self.out, f"{name}.log"), "w")
        args = [self.binary, "-name", name, "-port", str(port)]
        if join:
            args += ["-join", ",".join(f"127.0.0.1:{n.port}" for n in join)]
        return self.add(Node(name, port, subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), log.name))

    def parse(self, line):
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("alive", "failed", "left"):
            return int(parts[0]), parts[1], parts[2]
        return None


class Chorus(Cluster):
    def __init__(self, out, base_port, binary):
        super().__init__(out, base_port)
        self.binary = binary
        self.keys = os.path.join(out, "keys")
        os.makedirs(self.keys, exist_ok=True)
        subprocess.run([binary, "keygen", "--network", "--out", os.path.join(self.keys, "network.key")], check=True,
                       stdout=subprocess.DEVNULL)

    def start(self, join):
        port = self.next_port()
        name = f"n{self.started}"
        identity = os.path.join(self.keys, name)
        subprocess.run([self.binary, "keygen", "--out", identity], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(identity, "identity.public")) as f:
            peer_id = f.read().strip()
        config = os.path.join(self.out, f"{name}.toml")
        with open(config, "w") as f:
            f.write(f'[peer]\nbind = "127.0.0.1:{port}"\nidentity = "keys/{name}"\nnetwork_key = "keys/network.key"\n'
                    f'admin = "127.0.0.1:0"\ncheckpoint = "state/{name}.checkpoint"\n\n[membership]\nprofile = "lan"\n')
        log = open(os.path.join(self.out, f"{name}.log"), "w")
        args = [self.binary, "peer", "--config", config, "--membership-only", "--log-format", "json"]
        for n in join:
            args += ["--join", f"127.0.0.1:{n.port}"]
        node = Node(name, port, subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log), log.name)
        node.id = peer_id[:8]  # the logs' short ids
        return self.add(node)

    def parse(self, line):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        # "member alive" / "member failed" / "member left", the member's short id as a field.
        words = entry.get("message", "").split()
        if len(words) == 2 and words[0] == "member" and words[1] in ("alive", "failed", "left") and "member" in entry:
            t = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            return (t - datetime(1970, 1, 1)).total_seconds() * 1000, words[1], entry["member"]
        return None


def wait(condition, timeout, step=0.5):
    start = time.time()
    while time.time() - start < timeout:
        if condition():
            return True
        time.sleep(step)
    return False


def measure_crash(cluster, victim, crashed_at, timeout):
    """Seconds from the crash to the first node's verdict and to the last live node's, or None."""
    def verdicts():
        """Each live node's first verdict on the victim after the crash; None while one lists it live."""
        times = []
        for node in cluster.live:
            about = [(t, kind) for t, kind, subject in cluster.events(node) if subject == victim.id]
            failed = [t for t, kind in about if kind in ("failed", "left") and t >= crashed_at]
            if failed:
                times.append(failed[0])
            elif about:
                return None
        return times

    result = {}
    def done():
        v = verdicts()
        if v is None:
            return False
        result["times"] = v
        return True
    if not wait(done, timeout):
        return None, None
    times = result["times"]
    if not times:
        return None, 0.0
    return (min(times) - crashed_at) / 1000, (max(times) - crashed_at) / 1000


def run(system, n, cycles, gap, out, binary, base_port, seed, log):
    rng = random.Random(seed)
    cluster = (Chorus if system == "chorus" else Memberlist)(out, base_port, binary)
    rows = []
    try:
        first = cluster.start([])
        time.sleep(1)
        for i in range(1, n):
            cluster.start(cluster.live[:2] if system == "chorus" else [first])
            time.sleep(0.05)
        if not wait(cluster.lists_everyone, 60 + n):
            log(f"{system} {n}: the nodes did not all list each other within {60 + n} s")
            return rows
        log(f"{system} {n}: formed")
        for c in range(cycles):
            leaver = rng.choice(cluster.live[1:])
            cluster.leave(leaver)
            older = list(cluster.live)
            cluster.start(rng.sample(older, 2))
            time.sleep(gap)
            victim = rng.choice(older)
            crashed_at = now_ms()
            cluster.crash(victim)
            first_s, all_s = measure_crash(cluster, victim, crashed_at, 90)
            rows.append({"system": system, "nodes": n, "crash": c + 1, "first_failed_s": first_s, "seen_by_all_s": all_s})
            log(f"{system} {n}: crash {c + 1} of {victim.name}: first verdict {first_s} s, seen by all {all_s} s")
            time.sleep(5)
    finally:
        cluster.stop_all()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16,64,128", help="node counts, comma-separated")
    parser.add_argument("--systems", default="memberlist,chorus")
    parser.add_argument("--cycles", type=int, default=6, help="leave, join and crash cycles per run")
    parser.add_argument("--gap", type=float, default=4, help="seconds between a cycle's join and its crash")
    parser.add_argument("--chorus", required=True, help="the chorus binary (a release build)")
    parser.add_argument("--memberlist", required=True, help="the memberlist-node binary")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if os.path.exists(args.out) and os.listdir(args.out):
        sys.exit(f"--out {args.out}: exists and is not empty")
    os.makedirs(args.out, exist_ok=True)
    def log(message):
        print(time.strftime("%H:%M:%S"), message, flush=True)
    rows = []
    port = 17000
    for n in [int(s) for s in args.sizes.split(",")]:
        for system in args.systems.split(","):
            binary = args.chorus if system == "chorus" else args.memberlist
            rows += run(system, n, args.cycles, args.gap, os.path.join(args.out, f"{system}-{n}"), binary, port, args.seed, log)
            port += 1000
    with open(os.path.join(args.out, "crashes.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["system", "nodes", "crash", "first_failed_s", "seen_by_all_s"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"\n{'system':<11} {'nodes':>5} {'crashes':>7}  {'first verdict median / max':>27}  {'seen by all median / max':>25}")
    for n in [int(s) for s in args.sizes.split(",")]:
        for system in args.systems.split(","):
            mine = [r for r in rows if r["system"] == system and r["nodes"] == n]
            seen = [r["seen_by_all_s"] for r in mine if r["seen_by_all_s"] is not None]
            first = [r["first_failed_s"] for r in mine if r["first_failed_s"] is not None]
            missed = len(mine) - len(seen)
            fmt = lambda xs: f"{statistics.median(xs):6.2f} / {max(xs):6.2f} s" if xs else "—"
            print(f"{system:<11} {n:>5} {len(mine):>7}  {fmt(first):>27}  {fmt(seen):>25}" + (f"  ({missed} not seen by all within 90 s)" if missed else ""))
    print(f"\nper crash: {os.path.join(args.out, 'crashes.csv')}")


if __name__ == "__main__":
    main()

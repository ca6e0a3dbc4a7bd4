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

With --traffic SECONDS, no crash cycles: what membership costs on the wire. For each size and
system: start N nodes, wait until every node lists every other, let them settle (--settle, 60 s),
then read each node's counters of what it sent at the start and at the end of a window of
SECONDS without churn. Use a window of a multiple of 30 s, at least 60: memberlist pushes and
pulls every 30 s (DefaultLANConfig, up to 32 nodes; TCP) and Chorus syncs a digest every 30 s
± 20 %. The settling matters for memberlist: a node's first push-pull comes after a random stagger
of up to 30 s plus the interval, 30–60 s after it starts, so a window that opens earlier catches
fewer push-pulls than the steady state (with 10 s of settling, 22 instead of 32 in 60 s at 16
nodes). Chorus: `bytesSent` and `datagramsSent` from the admin endpoint's /status (UDP payload
bytes). memberlist: scripts/memberlist-node counts UDP packets and payload bytes and the bytes
written to its TCP streams (push-pull), and prints them on SIGUSR1. Writes DIR/traffic.csv (per
system and size) and DIR/traffic-nodes.csv (per node) and prints bytes and datagrams per member
per second (median over the nodes, max, mean) and bytes per datagram. Systems: memberlist,
memberlist-encrypted (its AES-GCM keyring, one 32-byte key), chorus (the binary's default
`gossip.session_keys`), chorus-session-keys and chorus-no-session-keys (`[gossip] session_keys`
written true or false); --traffic runs all but plain chorus unless --systems says otherwise.
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
import urllib.request
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
    def __init__(self, out, base_port, binary, encrypted=False):
        super().__init__(out, base_port)
        self.binary = binary
        self.secret_key = os.urandom(32).hex() if encrypted else None

    def start(self, join):
        port = self.next_port()
        name = f"n{self.started}"
        log = open(os.path.join(self.out, f"{name}.log"), "w")
        args = [self.binary, "-name", name, "-port", str(port)]
        if self.secret_key:
            args += ["-secret-key", self.secret_key]
        if join:
            args += ["-join", ",".join(f"127.0.0.1:{n.port}" for n in join)]
        return self.add(Node(name, port, subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), log.name))

    def parse(self, line):
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("alive", "failed", "left"):
            return int(parts[0]), parts[1], parts[2]
        return None

    def traffic_lines(self, node):
        """(s, counters) of each "<ms> traffic udp_packets=… …" line the node printed on SIGUSR1."""
        lines = []
        with open(node.log) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] == "traffic":
                    lines.append((int(parts[0]) / 1000, {k: int(v) for k, v in (p.split("=") for p in parts[2:])}))
        return lines

    def traffic(self, nodes):
        """Each node's counters now: SIGUSR1 to all at once, then the line each prints."""
        seen = {node.name: len(self.traffic_lines(node)) for node in nodes}
        for node in nodes:
            node.process.send_signal(signal.SIGUSR1)
        result = {}
        def printed():
            for node in nodes:
                if node.name not in result:
                    lines = self.traffic_lines(node)
                    if len(lines) > seen[node.name]:
                        t, c = lines[-1]
                        result[node.name] = {"t": t, "bytes": c["udp_bytes"] + c["tcp_bytes"],
                                             "datagrams": c["udp_packets"], "udp_bytes": c["udp_bytes"],
                                             "tcp_bytes": c["tcp_bytes"], "tcp_conns": c["tcp_conns"]}
            return len(result) == len(nodes)
        if not wait(printed, 10, step=0.1):
            raise RuntimeError("memberlist nodes did not print their traffic within 10 s: "
                               + ", ".join(n.name for n in nodes if n.name not in result))
        return result


class Chorus(Cluster):
    def __init__(self, out, base_port, binary, session_keys=None):
        """session_keys: True or False writes `[gossip] session_keys`; None leaves the binary's default."""
        super().__init__(out, base_port)
        self.binary, self.session_keys = binary, session_keys
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
            if self.session_keys is not None:
                f.write(f'\n[gossip]\nsession_keys = {"true" if self.session_keys else "false"}\n')
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

    def admin(self, node):
        """The admin endpoint the peer logged at start ("listening", admin=http://127.0.0.1:PORT)."""
        if not getattr(node, "admin", None):
            with open(node.log) as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("message") == "listening" and "admin" in entry:
                        node.admin = entry["admin"]
                        break
                else:
                    raise RuntimeError(f"{node.name}: no admin endpoint in {node.log}")
        return node.admin

    def traffic(self, nodes):
        """Each node's counters now, from GET /status (one node after the other)."""
        result = {}
        for node in nodes:
            before = time.time()
            with urllib.request.urlopen(self.admin(node) + "/status", timeout=5) as response:
                status = json.load(response)
            result[node.name] = {"t": (before + time.time()) / 2, "bytes": status["bytesSent"],
                                 "datagrams": status["datagramsSent"], "udp_bytes": status["bytesSent"],
                                 "tcp_bytes": 0, "tcp_conns": 0}
        return result


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


SYSTEMS = ("memberlist", "memberlist-encrypted", "chorus", "chorus-session-keys", "chorus-no-session-keys")
TRAFFIC_SYSTEMS = ("memberlist", "memberlist-encrypted", "chorus-session-keys", "chorus-no-session-keys")


def make_cluster(system, out, base_port, binary):
    if system == "memberlist":
        return Memberlist(out, base_port, binary)
    if system == "memberlist-encrypted":
        return Memberlist(out, base_port, binary, encrypted=True)
    if system == "chorus":
        return Chorus(out, base_port, binary)
    if system == "chorus-session-keys":
        return Chorus(out, base_port, binary, session_keys=True)
    if system == "chorus-no-session-keys":
        return Chorus(out, base_port, binary, session_keys=False)
    raise ValueError(f"unknown system {system}: expected one of {', '.join(SYSTEMS)}")


def form(cluster, system, n, log):
    """Starts n nodes (Chorus's join through the first two, memberlist's through the first) and
    waits until every node lists every other."""
    first = cluster.start([])
    time.sleep(1)
    for i in range(1, n):
        cluster.start(cluster.live[:2] if isinstance(cluster, Chorus) else [first])
        time.sleep(0.05)
    if not wait(cluster.lists_everyone, 60 + n):
        log(f"{system} {n}: the nodes did not all list each other within {60 + n} s")
        return False
    log(f"{system} {n}: formed")
    return True


def run(system, n, cycles, gap, out, binary, base_port, seed, log):
    rng = random.Random(seed)
    cluster = make_cluster(system, out, base_port, binary)
    rows = []
    try:
        if not form(cluster, system, n, log):
            return rows
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


def run_traffic(system, n, seconds, settle, out, binary, base_port, log):
    """One row per node: what it sent per second over a window of `seconds` without churn."""
    cluster = make_cluster(system, out, base_port, binary)
    rows = []
    try:
        if not form(cluster, system, n, log):
            return rows
        time.sleep(settle)
        events = lambda: sum(len(cluster.events(node)) for node in cluster.live)
        events_before = events()
        start = cluster.traffic(cluster.live)
        log(f"{system} {n}: counting for {seconds:g} s")
        time.sleep(seconds)
        end = cluster.traffic(cluster.live)
        churn = events() - events_before
        intact = cluster.lists_everyone()
        if churn or not intact:
            log(f"{system} {n}: {churn} membership events in the window"
                + ("" if intact else ", and the nodes no longer all list each other"))
        for node in cluster.live:
            a, b = start[node.name], end[node.name]
            window = b["t"] - a["t"]
            row = {"system": system, "nodes": n, "node": node.name, "window_s": round(window, 3)}
            for key in ("bytes", "datagrams", "udp_bytes", "tcp_bytes", "tcp_conns"):
                row[key] = b[key] - a[key]
            row["bytes_per_s"] = row["bytes"] / window
            row["datagrams_per_s"] = row["datagrams"] / window
            row["events_in_window"] = churn
            rows.append(row)
        mine = [r["bytes_per_s"] for r in rows]
        log(f"{system} {n}: median {statistics.median(mine):.1f} B/s per member, max {max(mine):.1f}")
    finally:
        cluster.stop_all()
    return rows


def summarize_traffic(rows, sizes, systems):
    """Per system and size: bytes and datagrams per member per second, bytes per datagram."""
    summary = []
    for n in sizes:
        for system in systems:
            mine = [r for r in rows if r["system"] == system and r["nodes"] == n]
            if not mine:
                continue
            window = statistics.median(r["window_s"] for r in mine)
            seconds = sum(r["window_s"] for r in mine)  # member-seconds
            rate = lambda key: sum(r[key] for r in mine) / seconds
            bytes_per_s = [r["bytes_per_s"] for r in mine]
            datagrams_per_s = [r["datagrams_per_s"] for r in mine]
            udp_bytes, datagrams = sum(r["udp_bytes"] for r in mine), sum(r["datagrams"] for r in mine)
            summary.append({
                "system": system, "nodes": n, "members_counted": len(mine), "window_s": round(window, 2),
                "bytes_per_member_s_median": round(statistics.median(bytes_per_s), 1),
                "bytes_per_member_s_max": round(max(bytes_per_s), 1),
                "bytes_per_member_s_mean": round(rate("bytes"), 1),
                "datagrams_per_member_s_median": round(statistics.median(datagrams_per_s), 3),
                "datagrams_per_member_s_max": round(max(datagrams_per_s), 3),
                "datagrams_per_member_s_mean": round(rate("datagrams"), 3),
                "bytes_per_datagram": round(udp_bytes / datagrams, 1) if datagrams else None,
                "udp_bytes_per_member_s_mean": round(rate("udp_bytes"), 1),
                "tcp_bytes_per_member_s_mean": round(rate("tcp_bytes"), 1),
                "tcp_share": round(sum(r["tcp_bytes"] for r in mine) / max(1, sum(r["bytes"] for r in mine)), 3),
                "tcp_conns_per_member_s": round(rate("tcp_conns"), 4),
                "events_in_window": mine[0]["events_in_window"],
            })
    return summary


def print_traffic(summary, out):
    print(f"\n{'system':<23} {'nodes':>5} {'window':>6}  {'bytes/member/s med / max (mean)':>31}  "
          f"{'datagrams/member/s med / max':>28}  {'B/datagram':>10}  {'UDP / TCP B/member/s':>20}")
    for s in summary:
        print(f"{s['system']:<23} {s['nodes']:>5} {s['window_s']:>5.0f}s  "
              f"{s['bytes_per_member_s_median']:>8.1f} / {s['bytes_per_member_s_max']:>7.1f} ({s['bytes_per_member_s_mean']:>7.1f})  "
              f"{s['datagrams_per_member_s_median']:>13.2f} / {s['datagrams_per_member_s_max']:>5.2f}     "
              f"{s['bytes_per_datagram'] if s['bytes_per_datagram'] is not None else '—':>10}  "
              f"{s['udp_bytes_per_member_s_mean']:>9.1f} / {s['tcp_bytes_per_member_s_mean']:>7.1f}"
              + (f"  ({s['events_in_window']} membership events in the window)" if s["events_in_window"] else ""))
    print(f"\nper system and size: {os.path.join(out, 'traffic.csv')}; per node: {os.path.join(out, 'traffic-nodes.csv')}")
    print("bytes: UDP payload (Chorus, memberlist) plus TCP stream payload (memberlist's push-pull); "
          "datagrams: UDP only; B/datagram: UDP bytes / UDP datagrams")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16,64,128", help="node counts, comma-separated")
    parser.add_argument("--systems", help=f"of {', '.join(SYSTEMS)}, comma-separated (default: memberlist,chorus; "
                        f"with --traffic {','.join(TRAFFIC_SYSTEMS)})")
    parser.add_argument("--cycles", type=int, default=6, help="leave, join and crash cycles per run")
    parser.add_argument("--gap", type=float, default=4, help="seconds between a cycle's join and its crash")
    parser.add_argument("--chorus", required=True, help="the chorus binary (a release build)")
    parser.add_argument("--memberlist", required=True, help="the memberlist-node binary")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--traffic", type=float, metavar="SECONDS",
                        help="measure traffic per member over a window of SECONDS (≥ 60 advised) instead of crashes")
    parser.add_argument("--settle", type=float, default=60,
                        help="with --traffic: seconds between formed and the window (memberlist's first push-pull "
                        "comes 30-60 s after a node starts)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.systems is None:
        args.systems = ",".join(TRAFFIC_SYSTEMS) if args.traffic else "memberlist,chorus"
    for system in args.systems.split(","):
        if system not in SYSTEMS:
            sys.exit(f"--systems: unknown {system}; expected some of {', '.join(SYSTEMS)}")
    if os.path.exists(args.out) and os.listdir(args.out):
        sys.exit(f"--out {args.out}: exists and is not empty")
    os.makedirs(args.out, exist_ok=True)
    def log(message):
        print(time.strftime("%H:%M:%S"), message, flush=True)
    sizes, systems = [int(s) for s in args.sizes.split(",")], args.systems.split(",")
    binary_of = lambda system: args.chorus if system.startswith("chorus") else args.memberlist
    if args.traffic:
        rows, port = [], 17000
        for n in sizes:
            for system in systems:
                rows += run_traffic(system, n, args.traffic, args.settle, os.path.join(args.out, f"{system}-{n}"),
                                    binary_of(system), port, log)
                port += 1000
        with open(os.path.join(args.out, "traffic-nodes.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["system"])
            writer.writeheader()
            writer.writerows(rows)
        summary = summarize_traffic(rows, sizes, systems)
        with open(os.path.join(args.out, "traffic.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(summary[0]) if summary else ["system"])
            writer.writeheader()
            writer.writerows(summary)
        print_traffic(summary, args.out)
        return
    rows = []
    port = 17000
    for n in [int(s) for s in args.sizes.split(",")]:
        for system in args.systems.split(","):
            binary = binary_of(system)
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

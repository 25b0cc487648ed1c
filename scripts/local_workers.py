"""Run one command as N tf.distribute workers on this machine, the way a cluster would start them.

Each copy gets its own ``TF_CONFIG`` (``worker`` 0..N-1 on free 127.0.0.1 ports), as Kubernetes,
Vertex AI or a Slurm wrapper set it on N machines; the output is prefixed by worker. For trying
``train.distribute=multi_worker`` and for its test and measurements, not a scheduler:

    python scripts/local_workers.py 2 edgecap train --run-dir runs/mw train.distribute=multi_worker

Exit status: the highest of the workers'.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workers", type=int, help="how many workers")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command every worker runs")
    args = parser.parse_args()
    if args.workers < 1 or not args.command:
        parser.error("give a number of workers >= 1 and a command")
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(args.workers)]}
    t0 = time.time()
    procs = []
    for index in range(args.workers):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(
            subprocess.Popen(args.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )

    def relay(index: int, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            sys.stdout.write(f"[worker {index}] {line}")

    threads = [threading.Thread(target=relay, args=(i, p)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        codes = [p.wait() for p in procs]
    for t in threads:
        t.join()
    print(f"{args.workers} worker(s) finished in {time.time() - t0:.1f} s, exit statuses {codes}")
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())

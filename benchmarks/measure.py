"""Wall time and peak memory of a command, its children included (the sidecar, the profile).

Imported by the benchmark scripts, which run as files (``python benchmarks/x.py``), so that this
folder is on the path.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path


def tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and every process below it (the sidecar, the profile), KiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        parents[pid] = int(fields.get("PPid", "0"))
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        total += rss.get(pid, 0)
        frontier.extend(child for child, parent in parents.items() if parent == pid)
    return total


def run_measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds, and the peak resident memory in MiB of the process and its children
    together, sampled every 100 ms (``ru_maxrss`` would count what the forking parent held)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_kib(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return elapsed, peak / 1024.0

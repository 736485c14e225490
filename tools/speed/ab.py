"""Side by side, interleaved per phase: for each source tree, `harness run` of smoke cold with 1 worker
(fresh --cache), the cached re-run (same cache), cold with 2 workers (another fresh cache); prints
wall, Sigma of the recorded case times, overhead = wall / Sigma, cached and 2-worker speed-ups.

    python tools/speed/ab.py [REPS] [NAME=TREE ...]   # e.g. base=/tmp/base new=.   (default: this tree)

Each tree runs with PYTHONPATH=TREE from TREE (its pyproject's project).  Wall-clock ratios need a
quiet machine: on a shared one, repeat and compare only runs taken side by side."""
import json, os, subprocess, sys, tempfile, time, shutil
from pathlib import Path

HERE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TREES = dict(a.split("=", 1) for a in sys.argv[2:]) or {"this": HERE}
TMP = tempfile.mkdtemp(prefix="speed-ab-")

def run(tree, cache, workers):
    env = dict(os.environ, PYTHONPATH=tree)
    out = tempfile.mkdtemp(prefix="out", dir=TMP)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-q", "--cache", cache, "--out", out,
                        "--workers", str(workers)], cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = p.stdout.strip().splitlines()
    rep = json.loads((Path(lines[-1]) / "report.json").read_text()) if lines else {"cases": []}
    sigma = sum(sum((c.get("timings") or {}).values()) for c in rep.get("cases", []))
    ok = p.returncode == 0 and len(rep.get("cases", [])) == 30
    shutil.rmtree(out, ignore_errors=True)
    return wall, sigma, ok, p.stderr[-300:]

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 1
for r in range(reps):
    res = {}
    caches = {k: (tempfile.mkdtemp(prefix="c1", dir=TMP), tempfile.mkdtemp(prefix="c2", dir=TMP)) for k in TREES}
    for phase, (idx, workers) in (("cold1", (0, 1)), ("cached", (0, 1)), ("cold2", (1, 2))):
        for k, tree in TREES.items():
            res[k, phase] = run(tree, caches[k][idx], workers)
            print(r, k, phase, "wall %.1f sigma %.1f ok %s %s" % res[k, phase], flush=True, file=sys.stderr)
    for k in TREES:
        w1, s1 = res[k, "cold1"][:2]; wc = res[k, "cached"][0]; w2 = res[k, "cold2"][0]
        print(f"rep {r} {k:4}: cold1 {w1:6.1f}s sigma {s1:5.1f}s overhead {w1/s1:4.2f} | cached {wc:5.1f}s "
              f"-> {w1/wc:4.1f}x | cold2 {w2:5.1f}s -> {w1/w2:4.2f}x", flush=True)
    for k in TREES:
        for c in caches[k]:
            shutil.rmtree(c, ignore_errors=True)

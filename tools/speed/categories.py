"""CPU seconds by category from a py-spy raw profile of `harness run` (py-spy record -s -f raw -r 50 -o F -- ...).

    python tools/speed/categories.py F [HZ]

First matching category wins, in the order listed (a PNG write inside a stage counts as the PNG write)."""
import sys, collections
CATS = [  # (name, any of these frames in the stack), first match wins
 ("report: final report.json (RunFolder.finish)", ["RunFolder.finish"]),
 ("report: views (render_report: load_report + html/md)", ["render_report", "_render_views"]),
 ("report: per-case record (case JSON, checks csv/parquet)", ["RunFolder.add"]),
 ("run folder start / header", ["_start", "RunFolder.start"]),
 ("plan: device probing (torch import)", ["stage_devices"]),
 ("plan: other", ["_Plan.make"]),
 ("judging on the driver", ["_SuiteRun._judged", "judge_case"]),
 ("worker: PNG encode+write of artifacts (_Execution.save)", ["_Execution.save"]),
 ("worker: stage-cache write (npz compress)", ["StageCache.put"]),
 ("worker: stage-cache read", ["StageCache.get"]),
 ("worker: key identity / device probe", ["stage_identity"]),
 ("worker: measure", ["measure"]),
 ("worker: absolute checks (expect)", ["evaluate"]),
 ("worker: stages (incl. model loading, imports)", ["cached_stage", "_generate_base", "_stage"]),
 ("worker: vector render", ["_input"]),
 ("worker: idle watchdog", ["_watch"]),
 ("worker: other in case", ["execute_case"]),
 ("worker: setup/recv/send", ["worker_main"]),
 ("fork server preload (+ warm-up)", ["@server"]),
 ("main: imports (cli/runner start-up, lazy ones)", ["_find_and_load"]),
]
f = sys.argv[1]; hz = float(sys.argv[2]) if len(sys.argv) > 2 else 50
c = collections.Counter()
for line in open(f):
    stack, _, n = line.rstrip().rpartition(" ")
    names = [fr.split(" (")[0] for fr in stack.split(";")]
    sset = set(names)
    procs = [fr for fr in stack.split(";") if fr.startswith("process ")]
    if len(procs) > 1 and "worker_main" not in sset:
        sset.add("@server")
    for cat, keys in CATS:
        if any(k in sset for k in keys):
            c[cat] += int(n); break
    else:
        c["other"] += int(n)
tot = sum(c.values())
for k, v in c.most_common():
    print(f"{v/hz:6.2f} s  {k}")
print(f"{tot/hz:6.2f} s  total CPU")

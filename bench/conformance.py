"""Run ONNX's backend node tests through stage two and our executor.

    python bench/conformance.py                 # every node test
    python bench/conformance.py --ops Add,Relu  # a subset
    python bench/conformance.py --json out.json # machine-readable results

Prints, per op, passed / wrong / unsupported / error counts, then a total line and the pass rate
over the node tests whose op is in our supported list.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.conformance import OUTCOMES, CaseResult, iter_cases, run_case


def _worker(name: str) -> CaseResult:
    logging.disable(logging.CRITICAL)
    case = _CASES[name]
    return run_case(case)


_CASES: dict = {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", help="comma-separated ONNX op types to run (default: all)")
    parser.add_argument("--filter", help="only tests whose name contains this text")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--json", type=Path, help="write every case's outcome to this JSON file")
    parser.add_argument("--show", choices=OUTCOMES, action="append", default=[], help="list the cases with this outcome")
    args = parser.parse_args(argv)

    ops = set(args.ops.split(",")) if args.ops else None
    cases = list(iter_cases(ops, args.filter))
    _CASES.update({c.name: c for c in cases})
    start = time.perf_counter()
    if args.jobs > 1:
        with mp.get_context("fork").Pool(args.jobs, maxtasksperchild=50) as pool:
            results = pool.map(_worker, list(_CASES), chunksize=4)
    else:
        results = [_worker(name) for name in _CASES]
    elapsed = time.perf_counter() - start

    from pipeline.lowering.registry import HANDLERS

    supported = set(HANDLERS.names(""))
    per_op: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        per_op[r.op][r.outcome] += 1
    print(f"{'op':28} " + " ".join(f"{o:>11}" for o in OUTCOMES))
    for op in sorted(per_op):
        mark = "" if op in supported else "  (not in supported list)"
        print(f"{op:28} " + " ".join(f"{per_op[op][o]:>11}" for o in OUTCOMES) + mark)
    total = Counter(r.outcome for r in results)
    print(f"{'TOTAL':28} " + " ".join(f"{total[o]:>11}" for o in OUTCOMES) + f"   ({len(results)} tests, {elapsed:.0f}s)")
    in_scope = [r for r in results if r.op in supported and r.outcome != "random"]
    passed = sum(r.outcome == "passed" for r in in_scope)
    as_is = sum(r.outcome == "passed" and not r.frozen for r in in_scope)
    rate = 100.0 * passed / len(in_scope) if in_scope else 0.0
    rate_as_is = 100.0 * as_is / len(in_scope) if in_scope else 0.0
    print(f"supported ops: {len(supported)}; scored node tests of supported ops: {len(in_scope)}")
    print(f"passed {passed} ({rate:.1f}%), of which {passed - as_is} with parameter inputs frozen "
          f"to constants; passed as given: {as_is} ({rate_as_is:.1f}%)")
    for outcome in args.show:
        for r in results:
            if r.outcome == outcome:
                print(f"  {outcome}: {r.name} [{r.op}] {r.detail}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

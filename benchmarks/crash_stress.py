"""Longer reliability run for ``skdynal.persistence``: many SIGKILLs and many fuzz inputs.

Prints the counts quoted in ``docs/reliability.md``::

    python benchmarks/crash_stress.py --kills 300 --seed 1 --fuzz-examples 2000

The crash part runs the same harness as ``tests/persistence/test_crash.py`` (a warm zygote
forks loop processes that are killed with SIGKILL at seeded random points, restarted, and
compared with an uninterrupted run bit for bit); the fuzz part runs the hypothesis test of
``tests/persistence/test_journal_fuzz.py`` with more examples and counts the journal calls
it made, accepted and refused.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fuzz_counts(n_examples):
    os.environ["SKDYNAL_FUZZ_EXAMPLES"] = str(n_examples)
    import tests.persistence.test_journal_fuzz as fuzz

    counts = Counter()
    record, commit = fuzz.Model.record, fuzz.Model.commit

    def counted(method, name):
        def wrapper(self, *args):
            accepted = method(self, *args)
            counts[f"{name}_{'accepted' if accepted else 'refused'}"] += 1
            return accepted

        return wrapper

    fuzz.Model.record = counted(record, "record_round")
    fuzz.Model.commit = counted(commit, "commit_labels")
    try:
        fuzz.test_journal_matches_model()
    finally:
        fuzz.Model.record, fuzz.Model.commit = record, commit
    return {"examples": n_examples, "calls": sum(counts.values()), **dict(sorted(counts.items()))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fuzz-examples", type=int, default=2000)
    args = parser.parse_args()
    from tests.persistence._crash import crash_campaign

    report = {"command": " ".join(["python", *sys.argv])}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        report["crash"] = crash_campaign(workdir, n_kills=args.kills, seed=args.seed)
    report["crash"]["seconds"] = round(time.perf_counter() - start, 1)
    if args.fuzz_examples:
        start = time.perf_counter()
        report["fuzz"] = fuzz_counts(args.fuzz_examples)
        report["fuzz"]["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

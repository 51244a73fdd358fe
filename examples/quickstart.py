"""Active learning on scikit-learn's digits: dynamicAL against random and uncertainty sampling.

A thin wrapper around the command line: ``python examples/quickstart.py [flags]`` is
``skdynal run [flags]`` (see ``skdynal run --help``). With no flags it runs the main job:
a small MLP starts from 50 labels and queries 50 per round for 6 rounds, over 3 seeds;
it prints the test accuracy after each round (mean over seeds) and the summary, and writes
the results and the learning-curve plot into ``skdynal-results/digits-mlp``.
"""

import sys

from skdynal.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))

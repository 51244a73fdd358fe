"""Reproduce, at small scale on digits, three diagnostics of the dynamicAL paper.

Wang et al., "Deep Active Learning by Leveraging Training Dynamics", NeurIPS 2022:

* Figure 2: Kendall's tau between the MSE training dynamics ``G_MSE(S u Q)`` and the
  alignment ``A(S u Q)`` over random candidate sets ``Q`` (true labels), at several points
  of training.
* Figure 4: the expected approximation ratio ``R(Q | S)`` of the subset approximation (Eq. 14)
  over random pseudo-labeled query sets of size ``b``, against training epochs.
* Figure 1: the NTK MMD between the initial and the current labeled set, against the
  generalisation term ``B(S, Y)``, over query rounds of dynamicAL.

Data: scikit-learn's ``load_digits`` (shipped with scikit-learn; no download). Model: a small
MLP in a skorch ``NeuralNetClassifier`` with ``CrossEntropyLoss``. All plots (matplotlib, Agg)
and a ``results.json`` with every number go to ``--out``.

Usage::

    python examples/paper_diagnostics.py --out docs/_static/diagnostics --seed 0
"""

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import kendalltau
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from skdynal import DynamicALSampler
from skdynal.diagnostics import (
    alignment,
    generalization_bound,
    ntk_mmd,
    training_dynamics,
    training_dynamics_change,
)


class MLP(nn.Module):
    """Two-layer ReLU network on the 64 digit pixels."""

    def __init__(self, hidden=64):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, X):
        return self.layers(X)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for plots and JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=64, help="MLP width")
    parser.add_argument("--n-initial", type=int, default=100, help="initial labeled set size")
    parser.add_argument(
        "--n-candidates",
        type=int,
        default=100,
        help="random candidate sets per point (Figures 2 and 4)",
    )
    parser.add_argument(
        "--candidate-size", type=int, default=20, help="size of the candidate sets of Figure 2"
    )
    parser.add_argument(
        "--query-sizes",
        type=int,
        nargs="+",
        default=[5, 10, 20, 40],
        help="query sizes b of Figure 4",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        nargs="+",
        default=[0, 1, 2, 5, 10, 20, 40],
        help="checkpoints (training epochs on S) of Figures 2 and 4",
    )
    parser.add_argument("--rounds", type=int, default=8, help="dynamicAL query rounds")
    parser.add_argument(
        "--query-size", type=int, default=20, help="samples queried per dynamicAL round (Figure 1)"
    )
    parser.add_argument(
        "--round-epochs", type=int, default=20, help="training epochs per round (Figure 1)"
    )
    parser.add_argument(
        "--ridge", type=float, default=0.0, help="ridge added to the NTK in B (0: none)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 avoids oversubscription on small CPUs)",
    )
    return parser.parse_args(argv)


def make_net(args):
    torch.manual_seed(args.seed)
    return NeuralNetClassifier(
        MLP,
        module__hidden=args.hidden,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        max_epochs=1,
        batch_size=32,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    ).initialize()


def train_epochs(net, X, y, n_epochs):
    for _ in range(n_epochs):
        net.partial_fit(X, y)


def load_data(seed):
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)


def figures_2_and_4(args, X_train, y_train, labeled, rng):
    """Alignment vs G_MSE (Fig. 2) and approximation ratios (Fig. 4) along training on S."""
    net = make_net(args)
    pool = np.setdiff1d(np.arange(len(X_train)), labeled)
    X_S, y_S = X_train[labeled], y_train[labeled]
    candidates = [
        rng.choice(pool, args.candidate_size, replace=False) for _ in range(args.n_candidates)
    ]
    queries = {
        b: [rng.choice(pool, b, replace=False) for _ in range(args.n_candidates)]
        for b in args.query_sizes
    }
    fig2, fig4 = [], []
    done = 0
    for epoch in sorted(args.epochs):
        train_epochs(net, X_S, y_S, epoch - done)
        done = epoch
        g_mse, align = [], []
        for Q in candidates:
            X_SQ = np.concatenate([X_S, X_train[Q]])
            y_SQ = np.concatenate([y_S, y_train[Q]])
            g_mse.append(training_dynamics(net, X_SQ, y_SQ, loss="mse"))
            align.append(alignment(net, X_SQ, y_SQ))
        tau = kendalltau(g_mse, align).statistic
        fig2.append({"epoch": epoch, "tau": float(tau), "g_mse": g_mse, "alignment": align})
        row = {"epoch": epoch, "ratios": {}}
        for b, sets in queries.items():
            row["ratios"][b] = [
                training_dynamics_change(net, X_train[Q], X_labeled=X_S, y_labeled=y_S).ratio
                for Q in sets
            ]
        fig4.append(row)
        print(
            f"epoch {epoch:3d}: tau(G_MSE, A) = {tau:.3f}; mean R: "
            + ", ".join(f"b={b}: {np.mean(r):.3f}" for b, r in row["ratios"].items())
        )
    return fig2, fig4


def figure_1(args, X_train, y_train, X_test, y_test, labeled):
    """MMD(S_0, S_t) and B(S_t) over dynamicAL query rounds."""
    net = make_net(args)
    sampler = DynamicALSampler(gamma=2.0, batch_size=256)
    initial = labeled.copy()
    current = labeled.copy()
    rows = []
    for round_ in range(args.rounds + 1):
        train_epochs(net, X_train[current], y_train[current], args.round_epochs)
        X_S, y_S = X_train[current], y_train[current]
        row = {
            "round": round_,
            "n_labeled": len(current),
            "accuracy": float(net.score(X_test, y_test)),
            "mmd": ntk_mmd(net, X_train[initial], X_S),
            "B_full": generalization_bound(net, X_S, y_S, ridge=args.ridge),
            "B_trace": generalization_bound(net, X_S, y_S, structure="trace", ridge=args.ridge),
        }
        rows.append(row)
        print(
            f"round {round_}: n={row['n_labeled']} acc={row['accuracy']:.3f} "
            f"MMD={row['mmd']:.4g} B_full={row['B_full']:.4g} B_trace={row['B_trace']:.4g}"
        )
        if round_ == args.rounds:
            break
        pool = np.setdiff1d(np.arange(len(X_train)), current)
        picked, _ = sampler.select(
            net, X_train[pool], args.query_size, X_labeled=X_S, y_labeled=y_S
        )
        current = np.concatenate([current, pool[picked]])
    return rows


def plot(args, fig2, fig4, fig1):
    out = args.out
    first = fig2[0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    axes[0].scatter(first["alignment"], first["g_mse"], s=10)
    axes[0].set_xlabel(r"alignment $A(S\cup Q)$")
    axes[0].set_ylabel(r"$G_{MSE}(S\cup Q)$")
    axes[0].set_title(f"epoch {first['epoch']}: Kendall $\\tau$ = {first['tau']:.3f}")
    axes[1].plot([r["epoch"] for r in fig2], [r["tau"] for r in fig2], "o-")
    axes[1].set_xlabel("training epochs on S")
    axes[1].set_ylabel(r"Kendall $\tau$")
    axes[1].set_ylim(-1.05, 1.05)
    axes[1].axhline(0, color="grey", lw=0.5)
    axes[1].set_title(
        f"{args.n_candidates} random Q, |S|={args.n_initial}, |Q|={args.candidate_size}"
    )
    fig.tight_layout()
    fig.savefig(out / "figure2_alignment_tau.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    epochs = [r["epoch"] for r in fig4]
    for b in args.query_sizes:
        means = [np.mean(r["ratios"][b]) for r in fig4]
        medians = [np.median(r["ratios"][b]) for r in fig4]
        axes[0].plot(epochs, means, "o-", label=f"b={b}")
        axes[1].plot(epochs, medians, "o-", label=f"b={b}")
    for ax, what in zip(axes, ["mean", "median"], strict=True):
        ax.axhline(1, color="grey", lw=0.5)
        ax.set_xlabel("training epochs on S")
        ax.set_ylabel(f"{what} approximation ratio R(Q|S)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "figure4_approximation_ratio.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    rounds = [r["round"] for r in fig1]
    axes[0].plot(rounds, [r["mmd"] for r in fig1], "o-", label="MMD(S0, S)")
    axes[0].plot(rounds, [r["B_full"] for r in fig1], "s-", label="B (full NTK)")
    axes[0].plot(rounds, [r["B_trace"] for r in fig1], "^-", label="B (class-averaged NTK)")
    axes[0].set_xlabel("dynamicAL query round")
    axes[0].set_ylim(bottom=0)
    axes[0].legend(loc="best", fontsize="small")
    axes[1].plot(rounds, [r["accuracy"] for r in fig1], "o-")
    axes[1].set_xlabel("dynamicAL query round")
    axes[1].set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(out / "figure1_mmd_vs_bound.png", dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rng = np.random.RandomState(args.seed)
    X_train, X_test, y_train, y_test = load_data(args.seed)
    labeled = rng.choice(len(X_train), args.n_initial, replace=False)
    fig2, fig4 = figures_2_and_4(args, X_train, y_train, labeled, rng)
    fig1 = figure_1(args, X_train, y_train, X_test, y_test, labeled)
    plot(args, fig2, fig4, fig1)
    summary = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "figure2": [{"epoch": r["epoch"], "tau": r["tau"]} for r in fig2],
        "figure4": [
            {
                "epoch": r["epoch"],
                "mean_ratio": {b: float(np.mean(v)) for b, v in r["ratios"].items()},
                "median_ratio": {b: float(np.median(v)) for b, v in r["ratios"].items()},
                "fraction_negative": {
                    b: float(np.mean(np.asarray(v) < 0)) for b, v in r["ratios"].items()
                },
            }
            for r in fig4
        ],
        "figure1": fig1,
        "seconds": time.perf_counter() - start,
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out} in {summary['seconds']:.0f} s")


if __name__ == "__main__":
    main()

"""The cases of issue 25, each tried once: is the outcome ok, a clear error, unclear, wrong?

Run from the repository root (``PYTHONPATH=<checkout>`` chooses the code)::

    python benchmarks/reliability_issue25.py

Prints a Markdown table (case, outcome, what happened) and the counts. ``ok``: the right
result; ``clear``: an error or warning that names the cause (the file, the row, the
callback) and what to do; ``unclear``: an error that does not; ``wrong``: a wrong result
accepted silently, or code run from a loop folder.
"""

import contextlib
import hashlib
import io
import json
import os
import pickle
import signal
import struct
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from modAL.models import ActiveLearner
from modAL.uncertainty import margin_sampling
from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping, LRScheduler

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH

from tests.persistence._helpers import (
    HalfRandomUncertainty,
    initial_ids,
    make_net,
    make_pool,
)

X = np.random.RandomState(0).rand(60, 5).astype(np.float32)
Y = np.arange(60) % 3
RESULTS = []


def case(name):
    def wrap(fn):
        try:
            outcome, note = fn()
        except Exception as exc:  # an error the case did not expect: unclear
            outcome, note = "unclear", f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
        RESULTS.append((name, outcome, note))
        return fn

    return wrap


def _linear(**kwargs):
    torch.manual_seed(0)
    params = dict(
        module__in_features=5,
        module__out_features=3,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
        verbose=0,
    )
    params.update(kwargs)
    return NeuralNetClassifier(torch.nn.Linear, **params)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@case("1. a pickle payload in a checkpoint's strategy.pkl, resume with query_strategy=")
def _payload():
    from skdynal.persistence import ResumableLoop
    from skdynal.persistence._checkpoint import list_checkpoints

    Xp, yp = make_pool()
    init = initial_ids(yp)
    with tempfile.TemporaryDirectory() as tmp:
        loop = ResumableLoop.start(
            tmp, make_net(), HalfRandomUncertainty(0), Xp, init, yp[init], random_state=0
        )
        loop.close()
        marker = os.path.join(tmp, "code-ran")
        data = pickle.dumps(_Payload(marker))
        for ckpt in list_checkpoints(Path(tmp) / "checkpoints"):
            (ckpt / "strategy.pkl").write_bytes(data)
            manifest = json.loads((ckpt / "MANIFEST.json").read_text())
            manifest["files"]["strategy.pkl"] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
            (ckpt / "MANIFEST.json").write_text(json.dumps(manifest))
        try:
            ResumableLoop.resume(tmp, make_net(), Xp, query_strategy=HalfRandomUncertainty(0))
        except Exception as exc:
            if os.path.exists(marker):
                return "wrong", "the payload ran"
            named = "strategy.pkl" in str(exc)
            return ("clear" if named else "unclear"), f"{type(exc).__name__}, names the file"
        return ("wrong", "the payload ran") if os.path.exists(marker) else ("wrong", "resumed")


@case("2. TrainUntilFit accuracy of a NeuralNetBinaryClassifier with threshold=0.9")
def _binary():
    from skdynal.callbacks import TrainUntilFit

    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([np.log(0.7 / 0.3)]))

        def forward(self, X):
            return self.bias.expand(len(X))

    Xb, yb = np.zeros((16, 2), np.float32), np.ones(16, np.float32)
    net = NeuralNetBinaryClassifier(
        Constant,
        threshold=0.9,
        lr=0.0,
        max_epochs=1,
        train_split=None,
        verbose=0,
        callbacks=[TrainUntilFit()],
    ).fit(Xb, yb)
    acc, predicted = net.history[-1, "train_acc"], float((net.predict(Xb) == yb).mean())
    return (
        "ok" if acc == predicted else "wrong"
    ), f"train_acc {acc}, predict's accuracy {predicted}"


@case("3. Ctrl-C while INASLearner trains its 2nd candidate")
def _inas_ctrl_c():
    from skdynal.nas import INASLearner, MLPFamily

    class Sigint(Callback):
        fits = 0

        def on_train_begin(self, net, **kwargs):
            type(self).fits += 1

        def on_epoch_end(self, net, **kwargs):
            if type(self).fits == 2 and len(net.history) == 1:
                os.kill(os.getpid(), signal.SIGINT)

    Xd = np.random.RandomState(1).rand(40, 64).astype(np.float32)
    net = NeuralNetClassifier(
        torch.nn.Linear,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        train_split=None,
        verbose=0,
        callbacks=[Sigint()],
    )
    try:
        INASLearner(net, margin_sampling, Xd, np.arange(40) % 10, family=MLPFamily(width=8))
    except KeyboardInterrupt as exc:
        return "clear", f"{type(exc).__name__}: {str(exc)[:60]}..."
    return (
        "wrong",
        f"swallowed: the search went on ({Sigint.fits} fits) and ranked the cut-short candidate",
    )


@case("4. a fit ended by skorch's EarlyStopping is recorded by TrainUntilFit")
def _early():
    from skdynal.callbacks import TrainUntilFit

    callback = TrainUntilFit(threshold=1.0, patience=50)
    net = _linear(
        max_epochs=100,
        callbacks=[EarlyStopping(monitor="train_loss", patience=2, threshold=0.5), callback],
    ).fit(X, Y)
    ok = callback.epochs_ == [len(net.history)]
    return ("ok" if ok else "wrong"), f"epochs_ {callback.epochs_}, history {len(net.history)}"


@case("5. ResetOptimizer listed after an LRScheduler (StepLR, gamma 0.5, 3 epochs)")
def _reset_after():
    from skdynal.callbacks import ResetOptimizer

    sched = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    net = _linear(lr=0.4, max_epochs=3, callbacks=[sched, ResetOptimizer()]).fit(X, Y)
    lr = net.optimizer_.param_groups[0]["lr"]
    return ("ok" if abs(lr - 0.05) < 1e-12 else "wrong"), f"lr after 3 epochs {lr} (0.05 expected)"


def _cell_case(change):
    from skdynal.datasets import load_digits_split
    from skdynal.experiments import run_experiment

    data = load_digits_split(random_state=0)
    tiny = dict(
        initial=20,
        query=10,
        rounds=2,
        epochs=1,
        batch_size=32,
        module_kwargs={"hidden": (8,)},
        progress=False,
    )
    with tempfile.TemporaryDirectory() as out:
        first = run_experiment(
            data, model="mlp", strategies=["random"], seeds=[0, 1], out=out, **tiny
        ).rows
        cell = sorted(Path(out, "cells").iterdir())[0]
        stored = json.loads(cell.read_text())
        change(stored)
        cell.write_text(json.dumps(stored))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                again = run_experiment(
                    data, model="mlp", strategies=["random"], seeds=[0, 1], out=out, **tiny
                ).rows
            except Exception as exc:
                named = str(cell) in str(exc)
                return ("clear" if named else "unclear"), f"{type(exc).__name__}: {str(exc)[:70]}"
        warned = [str(w.message) for w in caught if str(cell) in str(w.message)]
        acc = [(r["seed"], r["round"], r["test_accuracy"]) for r in again]
        if acc != [(r["seed"], r["round"], r["test_accuracy"]) for r in first]:
            return (
                "wrong",
                f"accepted: {len(again)} rows, seeds {sorted({r['seed'] for r in again})}",
            )
        return ("clear" if warned else "ok"), (warned[0][:100] if warned else "recomputed")


@case("6a. a stored benchmark cell whose rows were emptied")
def _emptied():
    return _cell_case(lambda s: s.update(rows=[]))


@case("6b. a stored benchmark cell with an edited accuracy")
def _edited():
    def change(s):
        s["rows"][1]["test_accuracy"] = 0.999

    return _cell_case(change)


@case("6c. a stored benchmark cell missing its rows key")
def _missing_key():
    return _cell_case(lambda s: s.pop("rows"))


@case("7. NaN in modAL's X_training (row 4), then a DynamicAL query")
def _nan_training():
    from skdynal import DynamicALSampler

    Xt = X.copy()
    Xt[4, 1] = np.nan
    learner = ActiveLearner(_linear(), DynamicALSampler(), X_training=Xt, y_training=Y)
    try:
        learner.query(X, n_instances=2)
    except ValueError as exc:
        clear = "row 4" in str(exc) and "labeled set" in str(exc)
        return ("clear" if clear else "unclear"), str(exc)[:100]
    return "wrong", "a batch was returned"


@case("9. INASLearner with MLPFamily() on 28x28 images")
def _inas_family():
    from skdynal.nas import INASLearner, MLPFamily

    Xi = np.random.RandomState(0).rand(30, 1, 28, 28).astype(np.float32)
    net = NeuralNetClassifier(
        torch.nn.Linear,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=1,
        train_split=None,
        verbose=0,
    )
    try:
        INASLearner(net, margin_sampling, Xi, np.arange(30) % 10, family=MLPFamily(width=8))
    except ValueError as exc:
        return ("clear" if "does not fit the data" in str(exc) else "unclear"), str(exc)[:100]
    return "wrong", "trained"


@case("10. skdynal benchmark --strategies random bald")
def _bald():
    from skdynal import cli
    from skdynal.experiments import _benchmark

    def called(*args, **kwargs):
        raise RuntimeError("run_benchmark started (it fails after the first cell)")

    real, _benchmark.run_benchmark = _benchmark.run_benchmark, called
    err = io.StringIO()
    try:
        with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(err):
            cli.main(["benchmark", "--quick", "--strategies", "random", "bald", "--out", out])
    except SystemExit as exc:
        text = err.getvalue().strip().splitlines()[-1]
        return ("clear" if exc.code == 2 and "dropout" in text else "unclear"), text[:100]
    finally:
        _benchmark.run_benchmark = real
    return "wrong", "accepted"


def _fashion(damage):
    from skdynal.datasets import load_fashion_mnist, write_fashion_mnist_standin

    with tempfile.TemporaryDirectory() as root:
        write_fashion_mnist_standin(root, n_train=20, n_test=10, gzip=False, random_state=0)
        name = damage(Path(root))
        try:
            load_fashion_mnist(root)
        except (OSError, ValueError) as exc:
            return str(exc), name
    return None, name


@case("11a. load_fashion_mnist with one of the four files missing")
def _one_missing():
    def damage(root):
        (root / "t10k-labels-idx1-ubyte").unlink()
        return "t10k-labels-idx1-ubyte"

    message, name = _fashion(damage)
    if message is None:
        return "wrong", "loaded"
    others = [n for n in ("train-images", "train-labels", "t10k-images") if f"{n}-idx" in message]
    clear = name in message and ("incomplete" in message or not others)
    return ("clear" if clear else "unclear"), message[:100]


@case("11b. load_fashion_mnist with a train images file holding 0 images")
def _zero_images():
    def damage(root):
        path = root / "train-images-idx3-ubyte"
        path.write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 0, 28, 28))
        return str(path)

    message, name = _fashion(damage)
    if message is None:
        return "wrong", "loaded"
    return ("clear" if name in message else "unclear"), message[:100]


@case("12. a scipy.sparse.csr_array pool (MarginSampler)")
def _csr_array():
    from skdynal import MarginSampler

    net = _linear().fit(X, Y)
    dense = MarginSampler(random_state=0).select(net, X, 3)[0]
    sparse = MarginSampler(random_state=0).select(net, sp.csr_array(X), 3)[0]
    same = np.array_equal(dense, sparse)
    return ("ok" if same else "wrong"), f"batch {sparse.tolist()}, dense pool {dense.tolist()}"


@case("13. a NaN in row 37 of an array pool")
def _pool_nan():
    from skdynal import MarginSampler

    net = _linear().fit(X, Y)
    pool = X.copy()
    pool[37, 2] = np.nan
    try:
        MarginSampler()(net, pool, 2)
    except ValueError as exc:
        return ("clear" if "row 37" in str(exc) else "unclear"), str(exc)[:100]
    return "wrong", "a batch was returned"


def main():
    warnings.filterwarnings("ignore", category=FutureWarning)
    print("| Case | Outcome | What happened |")
    print("|---|---|---|")
    for name, outcome, note in RESULTS:
        print(f"| {name} | {outcome} | {note.replace('|', '/')} |")
    counts = {k: sum(o == k for _, o, _ in RESULTS) for k in ("ok", "clear", "unclear", "wrong")}
    print()
    print(", ".join(f"{v} {k}" for k, v in counts.items()) + f" over {len(RESULTS)} cases")


if __name__ == "__main__":
    main()

"""Issue 14 items 2 and 4: every exported strategy on each case; outcomes counted.

Run from the repository root: ``python benchmarks/reliability_inputs.py [case ...]``.
ok: a valid batch; accepted: a valid batch, every computed value finite; clear: a
ValueError/TypeError raised by skdynal that names the cause; unclear: any other error;
wrong: a batch returned where the input was invalid.
"""

# ruff: noqa
import sys, traceback, warnings
import numpy as np, torch, scipy.sparse as sp

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests"))
torch.set_num_threads(1)
warnings.filterwarnings("ignore")
from _nets import BinaryMLP, TupleLossClassifier, TupleMLP, TwoInputMLP, fitted_net, make_net
from _strategy_settings import net_params, strategy_params
from sklearn.datasets import load_digits
from skorch import NeuralNetBinaryClassifier
import skdynal
from skdynal._base import BaseQueryStrategy

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
y = y.astype(np.int64)
X_lab, y_lab, X_pool = X[:60], y[:60], X[60:120]
STRATS = [
    getattr(skdynal, n)
    for n in skdynal.__all__
    if n != "LADASampler"
    and isinstance(getattr(skdynal, n), type)
    and issubclass(getattr(skdynal, n), BaseQueryStrategy)
]
only = sys.argv[1:]


def np_(cls):
    return net_params(cls)


def base_net(cls, **kw):
    p = np_(cls)
    p.update(kw)
    torch.manual_seed(0)
    return p


def case_nan_labeled(cls):
    net = fitted_net(X_lab, y_lab, **np_(cls))
    Xl = X_lab.copy()
    Xl[3, 5] = np.nan
    return net, X_pool, Xl, y_lab, "labeled"


def case_nan_params(cls):
    net = fitted_net(X_lab, y_lab, **np_(cls))
    with torch.no_grad():
        next(net.module_.parameters())[0, 0] = float("nan")
    return net, X_pool, X_lab, y_lab, "parameters"


def case_overflow_pool(cls):
    net = fitted_net(X_lab, y_lab, **np_(cls))
    P = X_pool.astype(np.float64)
    P[17, 5] = 1e300
    return net, P, X_lab, y_lab, "row 17"


def case_huge_pool(cls):
    net = fitted_net(X_lab, y_lab, **np_(cls))
    P = X_pool.copy()
    P[17, :] = 1e30
    return net, P, X_lab, y_lab, "row 17"


def case_dict(cls):
    p = np_(cls)
    drop = p.pop("module__dropout", 0.0)
    torch.manual_seed(0)
    d = lambda A: {"left": A[:, :32], "right": A[:, 32:]}
    net = make_net(module=TwoInputMLP, module__dropout=drop, **p).fit(d(X_lab), y_lab)
    return net, d(X_pool), d(X_lab), y_lab, None


def case_binary(cls):
    p = np_(cls)
    drop = p.pop("module__dropout", 0.0)
    nc = p.pop("net_class", None)
    torch.manual_seed(0)
    yb = (y_lab % 2).astype(np.float32)
    net = NeuralNetBinaryClassifier(
        BinaryMLP,
        module__dropout=drop,
        criterion=torch.nn.BCEWithLogitsLoss,
        max_epochs=3,
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
    ).fit(X_lab, yb)
    return net, X_pool, X_lab, yb, None


def case_string_labels(cls):
    names = np.array([f"digit{i}" for i in range(10)])
    net = fitted_net(X_lab, y_lab, classes=list(names), **np_(cls))
    return net, X_pool, X_lab, names[y_lab], None


def case_sparse(cls):
    net = fitted_net(X_lab, y_lab, **np_(cls))
    return net, sp.csr_matrix(X_pool), X_lab, y_lab, None


def case_tuple_loss(cls):
    p = np_(cls)
    drop = p.pop("module__dropout", 0.0)
    p.pop("net_class", None)
    torch.manual_seed(0)
    net = make_net(module=TupleMLP, module__dropout=drop, net_class=TupleLossClassifier, **p).fit(
        X_lab, y_lab
    )
    return net, X_pool, X_lab, y_lab, None


def case_label_range(cls):
    net = fitted_net(X_lab, y_lab, **np_(cls))
    yl = y_lab.copy()
    yl[4] = 12
    return net, X_pool, X_lab, yl, "label"


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}
counts = {"clear": 0, "ok": 0, "accepted": 0, "unclear": 0, "wrong": 0, "setup": 0}
for cname, make in CASES.items():
    if only and cname not in only:
        continue
    for cls in STRATS:
        try:
            net, P, Xl, yl, expect = make(cls)
        except Exception as e:
            print(f"{cname:15s} {cls.__name__:24s} SETUP {type(e).__name__}: {str(e)[:150]}")
            counts["setup"] += 1
            continue
        strat = cls(**{"random_state": 0, **strategy_params(cls)})
        try:
            idx, _ = strat.select(net, P, 5, X_labeled=Xl, y_labeled=yl)
            idx = np.asarray(idx)
            good = (
                len(set(idx.tolist())) == 5
                and idx.min() >= 0
                and idx.max()
                < (len(next(iter(P.values()))) if isinstance(P, dict) else P.shape[0])
            )
            if expect is None and good:
                out = "ok"
            elif cname == "huge_pool" and good:
                out = "accepted"
            elif expect in ("labeled", "parameters") and good and cls.__name__ == "RandomSampler":
                out = "ok"
            else:
                out = "wrong"
            msg = f"returned {idx.tolist()}"
        except (ValueError, TypeError) as e:
            m = str(e)
            deep = len(traceback.extract_tb(e.__traceback__))
            out = (
                "clear"
                if (expect is None or expect in m)
                and "skdynal" in traceback.extract_tb(e.__traceback__)[-1].filename
                else "unclear"
            )
            if expect is None:  # a refusal counts as clear only if it is a true refusal
                out = "clear" if ("need" in m or "finds its queried rows" in m) else "unclear"
            msg = f"{type(e).__name__}: {m[:230]}"
        except Exception as e:
            out = "unclear"
            msg = f"{type(e).__name__}: {str(e)[:200]}"
        counts[out] += 1
        print(f"{cname:15s} {cls.__name__:24s} {out:8s} {msg}")
print(counts)

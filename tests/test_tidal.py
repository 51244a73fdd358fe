"""TiDAL: recorded training dynamics, the module's loss, and the scores, by hand."""

import copy

import numpy as np
import pytest
import torch
from _nets import DigitsCNN, DigitsMLP, make_net
from sklearn.exceptions import NotFittedError
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

from skdynal import TiDALNetClassifier, TiDALSampler
from skdynal.strategies._tidal_module import resolve_stages


def tidal_net(batch_size=32, **kwargs):
    params = {
        "module": DigitsMLP,
        "module__dtype": torch.float64,
        "net_class": TiDALNetClassifier,
        "tidal_width": 8,
        **kwargs,
    }
    return make_net(**params).set_params(batch_size=batch_size)


class RecordSoftmax(Callback):
    """Store every training batch's inputs and softmax outputs, epoch by epoch."""

    def on_train_begin(self, net, **kwargs):
        self.epochs = []

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append([])

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        if training:
            X_batch = batch[0]["X"].detach().numpy().copy()
            self.epochs[-1].append((X_batch, torch.softmax(y_pred, 1).detach().numpy().copy()))


def row_positions(X, X_batch):
    """Index in X of every row of X_batch (each row must match exactly one row)."""
    matches = (X_batch[:, None, :] == X[None, :, :]).all(axis=2)
    assert (matches.sum(axis=1) == 1).all()
    return matches.argmax(axis=1)


def brute_force_mean(X, recorder):
    """Mean over epochs of each row's softmax output at the iteration it was seen."""
    total = np.zeros((len(X), 10))
    for epoch in recorder.epochs:
        seen = np.zeros(len(X), dtype=int)
        for X_batch, probs in epoch:
            rows = row_positions(X, X_batch)
            total[rows] += probs
            seen[rows] += 1
        assert (seen == 1).all()
    return total / len(recorder.epochs)


@pytest.fixture
def unique_digits(digits):
    X, y = digits
    _, first = np.unique(X, axis=0, return_index=True)
    keep = np.sort(first)[:70]
    return X[keep].astype(np.float64), y[keep]


def test_running_mean_equals_mean_of_per_epoch_softmax(unique_digits):
    X, y = unique_digits
    recorder = RecordSoftmax()
    torch.manual_seed(0)
    net = tidal_net(
        max_epochs=4,
        batch_size=16,
        module__dropout=0.3,
        iterator_train__shuffle=True,
        callbacks=[recorder],
    )
    net.fit(X[:50], y[:50])
    assert net.tidal_epochs_ == 4
    np.testing.assert_allclose(
        net.tidal_dynamics_.numpy(), brute_force_mean(X[:50], recorder), rtol=0, atol=1e-12
    )
    # A warm-started fit (the next active-learning round) records its own epochs only.
    net.set_params(max_epochs=2)
    net.fit(X, y)
    assert len(recorder.epochs) == 2
    assert net.tidal_dynamics_.shape == (70, 10)
    np.testing.assert_allclose(
        net.tidal_dynamics_.numpy(), brute_force_mean(X, recorder), rtol=0, atol=1e-12
    )


class SnapshotFirstBatch(Callback):
    def on_batch_begin(self, net, batch, training, **kwargs):
        if training and not hasattr(self, "module"):
            self.module = copy.deepcopy(net.module_)
            self.head = copy.deepcopy(net.tidal_module_)


def manual_head(head, features, n_classes=10):
    hidden = []
    for s, f in enumerate(features):
        W, b = getattr(head, f"stage{s}_weight"), getattr(head, f"stage{s}_bias")
        hidden.append(torch.relu(f @ W.T + b))
    return torch.cat(hidden, 1) @ head.out_weight.T + head.out_bias


def mlp_features(module, X):
    """The default stages of DigitsMLP: the inputs of its two Linear layers."""
    first = module.layers[0]
    return [X, torch.relu(first(X))]


@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_training_loss_is_cross_entropy_plus_weighted_kl(unique_digits, weight):
    X, y = unique_digits
    X, y = X[:40], y[:40]
    snap = SnapshotFirstBatch()
    torch.manual_seed(1)
    net = tidal_net(max_epochs=1, batch_size=40, tidal_weight=weight, callbacks=[snap])
    # The head's parameters are created on the first batch: train one epoch to create
    # them, then snapshot the state before the next (first) batch of a second fit.
    net.fit(X, y)
    del snap.module
    net.fit(X, y)
    module, head = snap.module, snap.head
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        logits = module(Xt)
        probs = torch.softmax(logits, 1)  # epoch 0 of this fit: the mean is the output
        ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y))
        q = torch.softmax(manual_head(head, mlp_features(module, Xt)), 1)
        kl = (probs * (probs.log() - q.log())).sum(1).mean()
    np.testing.assert_allclose(net.history[-1, "batches", 0, "tidal_loss"], kl.item(), rtol=1e-10)
    np.testing.assert_allclose(
        net.history[-1, "train_loss"], ce.item() + weight * kl.item(), rtol=1e-10
    )


def test_detached_features_leave_backbone_training_unchanged(unique_digits):
    X, y = unique_digits
    results = {}
    for name, net_class, extra in [
        ("plain", NeuralNetClassifier, {}),
        ("detached", TiDALNetClassifier, {"tidal_detach": True, "tidal_width": 8}),
        ("joint", TiDALNetClassifier, {"tidal_detach": False, "tidal_width": 8}),
    ]:
        torch.manual_seed(2)
        net = make_net(
            module=DigitsMLP,
            module__dtype=torch.float64,
            net_class=net_class,
            max_epochs=2,
            **extra,
        )
        net.initialize()
        torch.manual_seed(3)
        net.fit(X[:48], y[:48])
        results[name] = torch.cat([p.detach().flatten() for p in net.module_.parameters()])
    torch.testing.assert_close(results["detached"], results["plain"], rtol=0, atol=0)
    assert (results["joint"] - results["plain"]).abs().max() > 1e-6


@pytest.mark.parametrize("uncertainty", ["entropy", "margin"])
def test_scores_by_hand(unique_digits, uncertainty):
    X, y = unique_digits
    torch.manual_seed(4)
    net = tidal_net(max_epochs=3, module__dropout=0.2).fit(X[:40], y[:40])
    net.module_.train()
    scores = TiDALSampler(uncertainty=uncertainty, batch_size=7).score(net, X[40:])
    assert net.module_.training  # mode restored
    module, head = copy.deepcopy(net.module_).eval(), net.tidal_module_
    Xt = torch.as_tensor(X[40:])
    with torch.no_grad():
        p = torch.softmax(manual_head(head, mlp_features(module, Xt)), 1).numpy()
        backbone = module(Xt).argmax(1).numpy()
    if uncertainty == "entropy":
        expected = -(p * np.log(p)).sum(1)
    else:
        rows = np.arange(len(p))
        others = p.copy()
        others[rows, backbone] = -np.inf
        expected = -(p[rows, backbone] - others.max(1))
    np.testing.assert_allclose(scores, expected, rtol=1e-10, atol=1e-12)


def test_cnn_stages_are_pooled_conv_outputs(digits):
    X, y = digits
    X = X[:40].reshape(-1, 1, 8, 8).astype(np.float64)
    torch.manual_seed(5)
    net = make_net(
        module=DigitsCNN,
        module__dtype=torch.float64,
        net_class=TiDALNetClassifier,
        tidal_width=4,
        max_epochs=2,
    ).fit(X[:30], y[:30])
    stages = resolve_stages(net.module_, None)
    assert [(name, where) for name, _, where in stages] == [
        ("features.0", "output"),
        ("features.4", "output"),
        ("head", "input"),
    ]
    module = copy.deepcopy(net.module_).eval()
    Xt = torch.as_tensor(X[30:])
    with torch.no_grad():
        conv1 = module.features[0](Xt)
        after = module.features[3](module.features[2](module.features[1](conv1)))
        conv2 = module.features[4](after)
        pooled = module.features[7](module.features[6](module.features[5](conv2)))
        features = [conv1.mean((2, 3)), conv2.mean((2, 3)), pooled]
        p = torch.softmax(manual_head(net.tidal_module_, features), 1).numpy()
    scores = TiDALSampler().score(net, X[30:])
    np.testing.assert_allclose(scores, -(p * np.log(p)).sum(1), rtol=1e-10)


def test_resnet_style_stages_and_named_stages():
    class Stages(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for i in range(1, 5):
                setattr(self, f"layer{i}", torch.nn.Conv2d(1, 1, 1))
            self.fc = torch.nn.Linear(1, 2)

    module = Stages()
    assert [n for n, _, _ in resolve_stages(module, None)] == [f"layer{i}" for i in range(1, 5)]
    assert [(n, w) for n, _, w in resolve_stages(module, ["layer2", "fc:input"])] == [
        ("layer2", "output"),
        ("fc", "input"),
    ]
    with pytest.raises(ValueError, match=r"not a submodule.*layer1"):
        resolve_stages(module, ["nope"])
    with pytest.raises(ValueError, match="name:input"):
        resolve_stages(module, ["fc:inside"])
    with pytest.raises(TypeError, match="list of module names"):
        resolve_stages(module, "fc")


def test_plain_net_is_refused_with_the_mixin_named(fitted_mlp, labeled_and_pool):
    _, _, X_pool = labeled_and_pool
    with pytest.raises(TypeError, match=r"TiDALMixin.*TiDALNetClassifier"):
        TiDALSampler().score(fitted_mlp, X_pool)


def test_bad_uncertainty(unique_digits):
    X, y = unique_digits
    net = tidal_net(max_epochs=1).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"'uncertainty' parameter of TiDALSampler must be"):
        TiDALSampler(uncertainty="variance").score(net, X[20:])


def test_nll_net_with_probability_outputs(unique_digits):
    X, y = unique_digits
    torch.manual_seed(6)
    net = tidal_net(
        max_epochs=2,
        criterion=torch.nn.NLLLoss,
        module__probabilities=True,
    ).fit(X[:30], y[:30])
    # The dynamics are running means of the module's own (probability) outputs.
    dynamics = net.tidal_dynamics_.numpy()
    np.testing.assert_allclose(dynamics.sum(1), 1.0, rtol=1e-12)
    assert TiDALSampler().score(net, X[30:]).shape == (len(X) - 30,)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"tidal_width": 0}, ValueError, "tidal_width"),
        ({"tidal_weight": -1.0}, ValueError, "tidal_weight"),
        ({"tidal_detach": "yes"}, TypeError, "tidal_detach"),
        ({"tidal_stages": ["layers.9"]}, ValueError, "not a submodule"),
    ],
)
def test_bad_mixin_parameters(params, error, message):
    with pytest.raises(error, match=message):
        tidal_net(**params).initialize()


class CheckRowIndex(Callback):
    """Check that every training batch carries its rows' positions in the training data."""

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.dataset_train = dataset_train

    def on_train_begin(self, net, **kwargs):
        self.positions, self.valid_batches = [], 0

    def on_batch_begin(self, net, batch, training, **kwargs):
        X_batch = batch[0]
        if not training:
            assert torch.is_tensor(X_batch)  # validation batches are skorch's own
            self.valid_batches += 1
            return
        assert set(X_batch) == {"X", "row_index"}
        index = X_batch["row_index"].numpy()
        rows = np.stack([np.asarray(self.dataset_train[int(i)][0]) for i in index])
        np.testing.assert_array_equal(X_batch["X"].numpy(), rows)
        self.positions.append(index)


@pytest.mark.parametrize("split", [None, 5])
def test_training_batches_carry_their_row_indices(unique_digits, split):
    from skorch.callbacks import EpochScoring
    from skorch.dataset import ValidSplit

    X, y = unique_digits
    check = CheckRowIndex()
    torch.manual_seed(7)
    net = tidal_net(
        max_epochs=2,
        batch_size=16,
        iterator_train__shuffle=True,
        callbacks=[
            ("train_acc", EpochScoring("accuracy", on_train=True, name="train_acc")),
            check,
        ],
    )
    net.set_params(train_split=None if split is None else ValidSplit(split, stratified=False))
    net.fit(X[:40], y[:40])
    assert 0.0 <= net.history[-1, "train_acc"] <= 1.0
    assert not hasattr(net, "tidal_batch_index_")  # no side channel on the net
    n_train = 40 if split is None else 32
    assert net.tidal_dynamics_.shape == (n_train, 10)
    # Each epoch visits every training row once, in a shuffled order.
    positions = np.concatenate(check.positions)
    np.testing.assert_array_equal(np.sort(positions[:n_train]), np.arange(n_train))
    np.testing.assert_array_equal(np.sort(positions[n_train:]), np.arange(n_train))
    assert not np.array_equal(positions[:n_train], np.arange(n_train))
    assert (net.tidal_recorded_epoch_ == 1).all()
    assert check.valid_batches == (0 if split is None else 2)


def test_training_refuses_batches_without_row_indices(unique_digits):
    class OwnIterator(TiDALNetClassifier):
        def get_iterator(self, dataset, training=False):
            return NeuralNetClassifier.get_iterator(self, dataset, training=training)

    X, y = unique_digits
    net = make_net(module=DigitsMLP, net_class=OwnIterator, tidal_width=4, max_epochs=1)
    with pytest.raises(ValueError, match=r"row indices.*super\(\)\.get_iterator"):
        net.fit(X[:20].astype(np.float32), y[:20])


def test_optimizer_closure_called_twice_records_once(unique_digits):
    X, y = unique_digits
    recorder = RecordSoftmax()
    torch.manual_seed(8)
    net = tidal_net(
        max_epochs=3,
        batch_size=40,
        optimizer=torch.optim.LBFGS,
        optimizer__max_iter=3,
        optimizer__lr=0.5,
        callbacks=[recorder],
    )
    net.fit(X[:40], y[:40])
    # LBFGS evaluates each batch several times; skorch reports the first evaluation's
    # y_pred, which is the one recorded.
    np.testing.assert_allclose(
        net.tidal_dynamics_.numpy(), brute_force_mean(X[:40], recorder), rtol=0, atol=1e-12
    )


def test_module_is_trained_by_the_nets_optimizer(unique_digits):
    X, y = unique_digits
    torch.manual_seed(9)
    net = tidal_net(max_epochs=1).fit(X[:32], y[:32])
    optimized = {id(p) for group in net.optimizer_.param_groups for p in group["params"]}
    head = list(net.tidal_module_.parameters())
    assert {id(p) for p in head} <= optimized
    before = [p.detach().clone() for p in head]
    net.fit(X[:32], y[:32])
    assert max((a - b).abs().max().item() for a, b in zip(before, head, strict=True)) > 0


def test_tidal_net_refuses_a_single_logit_binary_module_with_a_clear_error():
    class OneLogit(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(8, 16)
            self.out = torch.nn.Linear(16, 1)

        def forward(self, X):
            return self.out(torch.relu(self.hidden(X))).squeeze(-1)

    X = np.random.RandomState(0).randn(40, 8).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    net = TiDALNetClassifier(
        OneLogit, criterion=torch.nn.BCEWithLogitsLoss, max_epochs=1, train_split=None, verbose=0
    )
    with pytest.raises(TypeError, match="one output per class"):
        net.fit(X, y)


class EpochPermutations(torch.utils.data.Sampler):
    """Training row order: epoch ``e`` (counted over every fit) visits the rows in the order
    ``RandomState(seed + e).permutation(n)``, so a loop outside skorch can replay it."""

    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        order = np.random.RandomState(self.seed + self.epoch).permutation(self.n)
        self.epoch += 1
        return iter(order.tolist())


class SnapshotDynamics(Callback):
    """Copy ``tidal_dynamics_`` at the end of every training epoch."""

    def on_train_begin(self, net, **kwargs):
        self.epochs = []

    def on_epoch_end(self, net, **kwargs):
        self.epochs.append(net.tidal_dynamics_.numpy().copy())


def brute_force_tidal_training(module, head, X, y, *, epochs, batch_size, lr, weight, orders):
    """TiDAL's training, written out: plain SGD on cross-entropy plus ``weight`` times the
    KL divergence from each row's running mean to the head's prediction, the running mean
    ``m_i <- (e m_i + p_i) / (e + 1)`` updated row by row in Python. Returns the running
    means after every epoch and the per-batch KL losses; trains ``module``/``head`` in place.
    """
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    parameters = list(module.parameters()) + list(head.parameters())
    running = np.zeros((len(X), 10))
    snapshots, kl_losses = [], []
    for epoch, order in zip(range(epochs), orders, strict=False):
        for start in range(0, len(X), batch_size):
            rows = order[start : start + batch_size]
            logits = module(Xt[rows])
            probs = torch.softmax(logits, 1).detach().numpy()
            for k, row in enumerate(rows):
                running[row] = (epoch * running[row] + probs[k]) / (epoch + 1)
            log_q = torch.log_softmax(manual_head(head, mlp_features(module, Xt[rows])), 1)
            target = torch.as_tensor(running[rows])
            kl = sum((target[k] * (target[k].log() - log_q[k])).sum() for k in range(len(rows)))
            kl = kl / len(rows)
            loss = torch.nn.functional.cross_entropy(logits, yt[rows]) + weight * kl
            gradients = torch.autograd.grad(loss, parameters)
            with torch.no_grad():
                for parameter, gradient in zip(parameters, gradients, strict=True):
                    parameter -= lr * gradient
            kl_losses.append(kl.item())
        snapshots.append(running.copy())
    return snapshots, kl_losses


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_recorded_dynamics_equal_brute_force_training(unique_digits, weight):
    """The running means, the KL losses and the trained weights of a (warm-started) fit
    equal a brute-force replay of TiDAL's training (this test passed unchanged on the code
    that handed batch indices to the net through an attribute)."""
    X, y = unique_digits
    X, y = X[:45], y[:45]
    snapshots = SnapshotDynamics()
    torch.manual_seed(10)
    net = tidal_net(
        max_epochs=1,
        batch_size=16,
        tidal_weight=weight,
        iterator_train__sampler=EpochPermutations(len(X), seed=100),
        callbacks=[snapshots],
    )
    net.fit(X, y)  # creates the head; the replay starts from the weights after this fit
    module = copy.deepcopy(net.module_)
    head = copy.deepcopy(net.tidal_module_)
    net.set_params(max_epochs=3)
    net.fit(X, y)
    orders = [np.random.RandomState(100 + e).permutation(len(X)) for e in (1, 2, 3)]
    expected, kl_losses = brute_force_tidal_training(
        module, head, X, y, epochs=3, batch_size=16, lr=0.1, weight=weight, orders=orders
    )
    assert net.tidal_epochs_ == 3
    assert len(snapshots.epochs) == 3
    for recorded, brute in zip(snapshots.epochs, expected, strict=True):
        np.testing.assert_allclose(recorded, brute, rtol=0, atol=1e-12)
    recorded_kl = [b["tidal_loss"] for epoch in net.history for b in epoch["batches"]]
    np.testing.assert_allclose(recorded_kl[-len(kl_losses) :], kl_losses, rtol=1e-10)
    trained = list(net.module_.parameters()) + list(net.tidal_module_.parameters())
    replayed = list(module.parameters()) + list(head.parameters())
    for a, b in zip(trained, replayed, strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12)


def test_capabilities_declare_the_net_class():
    capabilities = TiDALSampler().capabilities()
    assert capabilities.net_class is TiDALNetClassifier
    assert capabilities.ranks_by_score and capabilities.shardable
    assert not capabilities.needs_labeled and not capabilities.needs_dropout
    # Declared by the class itself, not patched on after its definition.
    assert "capabilities" in vars(TiDALSampler)
    assert not hasattr(TiDALSampler, "_required_net_class")
    assert not hasattr(TiDALSampler, "_test_net_params")


@pytest.fixture
def fitted_tidal(unique_digits):
    X, y = unique_digits
    torch.manual_seed(11)
    return tidal_net(max_epochs=2).fit(X[:40], y[:40]), X[40:]


def test_pool_rows_go_through_the_one_pool_loop(fitted_tidal, monkeypatch):
    import skdynal._base

    net, X_pool = fitted_tidal
    calls = []
    real = skdynal._base.map_pool

    def spy(adapter, X_rows, batch_fn, **kwargs):
        calls.append(kwargs["batch_size"])
        return real(adapter, X_rows, batch_fn, **kwargs)

    monkeypatch.setattr(skdynal._base, "map_pool", spy)
    sampler = TiDALSampler(batch_size=7, random_state=0)
    scores = sampler.score(net, X_pool)
    indices, chosen = sampler.select(net, X_pool, n_instances=5)
    assert calls == [7, 7]
    np.testing.assert_array_equal(np.sort(indices), np.sort(np.argsort(-scores)[:5]))
    np.testing.assert_array_equal(chosen, scores[indices])


def test_dataset_and_memmap_pools_score_like_the_array(fitted_tidal, tmp_path):
    net, X_pool = fitted_tidal
    expected = TiDALSampler(batch_size=8).score(net, X_pool)
    dataset = torch.utils.data.TensorDataset(
        torch.as_tensor(X_pool), torch.zeros(len(X_pool), dtype=torch.long)
    )
    np.testing.assert_allclose(
        TiDALSampler(batch_size=8).score(net, dataset), expected, rtol=0, atol=1e-13
    )
    path = tmp_path / "pool.npy"
    np.save(path, X_pool)
    memmap = np.load(path, mmap_mode="r")
    np.testing.assert_allclose(
        TiDALSampler(batch_size=8).score(net, memmap), expected, rtol=0, atol=1e-13
    )
    X_bad = torch.as_tensor(X_pool).clone()
    X_bad[13, 2] = float("nan")
    bad = torch.utils.data.TensorDataset(X_bad, torch.zeros(len(X_pool), dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        TiDALSampler(batch_size=8).select(net, bad, n_instances=2)


def test_unfitted_head_is_refused(unique_digits):
    X, _ = unique_digits
    net = tidal_net().initialize()
    with pytest.raises(NotFittedError, match="prediction module"):
        TiDALSampler().select(net, X[:10], n_instances=1)

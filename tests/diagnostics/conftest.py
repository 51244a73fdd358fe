"""Tiny float64 nets and brute-force references for the diagnostics tests.

The references are deliberately naive: one ``torch.autograd.grad`` call per sample (and
per output), kernels built entry by entry in Python loops, losses written out by hand.
"""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn

N_FEATURES, N_HIDDEN, N_CLASSES = 4, 5, 3


class TinyMLP(nn.Module):
    def __init__(self, softmax=False, dtype=torch.float64):
        super().__init__()
        self.hidden = nn.Linear(N_FEATURES, N_HIDDEN, dtype=dtype)
        self.out = nn.Linear(N_HIDDEN, N_CLASSES, dtype=dtype)
        self.softmax = softmax

    def forward(self, X):
        logits = self.out(torch.tanh(self.hidden(X)))
        return torch.softmax(logits, dim=-1) if self.softmax else logits


def make_data(seed, n, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(dtype)
    y = rng.randint(0, N_CLASSES, size=n).astype(np.int64)
    return X, y


def make_net(criterion=nn.CrossEntropyLoss, softmax=False, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    X, y = make_data(seed + 100, 24, np.float64 if dtype == torch.float64 else np.float32)
    net = NeuralNetClassifier(
        TinyMLP,
        module__softmax=softmax,
        module__dtype=dtype,
        criterion=criterion,
        max_epochs=3,
        lr=0.1,
        batch_size=8,
        train_split=None,
        verbose=0,
    )
    return net.fit(X, y)


@pytest.fixture(scope="module")
def ce_net():
    """A fitted float64 MLP returning logits, trained with CrossEntropyLoss."""
    return make_net()


@pytest.fixture(scope="module")
def data():
    X_labeled, y_labeled = make_data(1, 7)
    X_query, y_query = make_data(2, 5)
    return X_labeled, y_labeled, X_query, y_query


def params_of(module):
    return [p for p in module.parameters() if p.requires_grad]


def brute_jacobian(module, x):
    """J(x), shape (K, P): one backward call per output."""
    params = params_of(module)
    out = module(torch.as_tensor(x)[None])[0]
    rows = []
    for k in range(out.shape[0]):
        grads = torch.autograd.grad(out[k], params, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows).detach().numpy()


def brute_kernel(module, X, X2):
    """Theta[i, j, k, l] = <J_k(x_i), J_l(x_j)>, entry by entry."""
    jac1 = [brute_jacobian(module, x) for x in X]
    jac2 = [brute_jacobian(module, x) for x in X2]
    K = jac1[0].shape[0]
    theta = np.zeros((len(X), len(X2), K, K))
    for i in range(len(X)):
        for j in range(len(X2)):
            for k in range(K):
                for m in range(K):
                    theta[i, j, k, m] = float(np.dot(jac1[i][k], jac2[j][m]))
    return theta


def brute_loss_gradient(module, x, target, loss):
    """Gradient of one sample's loss: cross-entropy on logits, or half squared error."""
    params = params_of(module)
    out = module(torch.as_tensor(x)[None])[0]
    if loss == "ce":
        value = -torch.log_softmax(out, dim=0)[int(target)]
    elif loss == "nll_of_probs":
        value = -torch.log(out[int(target)])
    else:
        value = 0.5 * ((out - torch.as_tensor(target)) ** 2).sum()
    grads = torch.autograd.grad(value, params)
    return torch.cat([g.reshape(-1) for g in grads]).detach().numpy()


def one_hot(y, K=N_CLASSES):
    Y = np.zeros((len(y), K))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def flat_block_matrix(theta):
    n, n2, K, _ = theta.shape
    M = np.zeros((n * K, n2 * K))
    for i in range(n):
        for j in range(n2):
            for k in range(K):
                for m in range(K):
                    M[i * K + k, j * K + m] = theta[i, j, k, m]
    return M

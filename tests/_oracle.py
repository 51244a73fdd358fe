"""The tests' one brute-force oracle for per-sample gradients and dynamicAL's Δ.

One ``torch.autograd.grad`` call per sample, every gradient flattened and summed or dotted
explicitly in float64. Independent of skdynal on purpose: it imports nothing from the
package and uses no hooks, no ``torch.func`` and no per-layer rules, so the engine, the
``torch.func`` reference and every strategy can be checked against it.

Δ_u = ||g_u||² + γ <g_u, G>, with g_u the gradient of the loss of pool sample u at its
pseudo label (argmax of the module's output) and G the summed gradient over the labeled
set (Wang et al., NeurIPS 2022, Eq. 15).
"""

import numpy as np
import torch
import torch.nn.functional as F


def cross_entropy(outputs, targets):
    """Per-sample cross-entropy of logits."""
    return F.cross_entropy(outputs, targets, reduction="none")


def nll_of_probabilities(outputs, targets):
    """Per-sample ``-log(p_y + eps)`` of probabilities, as skorch's ``NLLLoss`` path."""
    eps = torch.finfo(outputs.dtype).eps
    return -torch.log(outputs.gather(1, targets[:, None])[:, 0] + eps)


def dynamical_loss(probabilities):
    """The per-sample loss of a module that outputs probabilities or logits."""
    return nll_of_probabilities if probabilities else cross_entropy


def _parameters(module, names):
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    if names is not None:
        params = {n: params[n] for n in names}
    return params


def _row(inputs, u):
    if isinstance(inputs, dict):
        return {k: v[u : u + 1] for k, v in inputs.items()}
    return inputs[u : u + 1]


def _flat_gradients(module, loss_fn, inputs, targets, params):
    """Yield each sample's gradient over ``params``, flattened, in float64."""
    for u in range(len(targets)):
        x = _row(inputs, u)
        out = module(**x) if isinstance(x, dict) else module(x)
        loss = loss_fn(out, targets[u : u + 1]).sum()
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        yield torch.cat(
            [
                (torch.zeros_like(p) if g is None else g).reshape(-1).double()
                for g, p in zip(grads, params.values(), strict=True)
            ]
        )


def per_sample_gradients(module, loss_fn, inputs, targets, names=None):
    """``(B, P)`` float64: one row per sample, the gradient of its loss.

    ``names`` restricts (and orders) the parameters (default: every parameter with
    ``requires_grad``, in ``named_parameters`` order). The module is used as it is: put it
    in the mode it should be differentiated in first.
    """
    params = _parameters(module, names)
    return torch.stack(list(_flat_gradients(module, loss_fn, inputs, targets, params)))


def grad_stats(module, loss_fn, inputs, targets, direction=None, names=None):
    """``(sq_norms, dots)``: ``||g_u||²`` and ``<g_u, direction>`` as float64 tensors.

    ``direction`` is keyed by parameter name; ``dots`` is ``None`` without one.
    """
    params = _parameters(module, names)
    batch = len(targets)
    sq_norms = torch.zeros(batch, dtype=torch.float64)
    dots = None if direction is None else torch.zeros(batch, dtype=torch.float64)
    flat_direction = None
    if direction is not None:
        flat_direction = torch.cat([direction[n].reshape(-1).double() for n in params])
    for u, flat in enumerate(_flat_gradients(module, loss_fn, inputs, targets, params)):
        sq_norms[u] = flat @ flat
        if direction is not None:
            dots[u] = flat @ flat_direction
    return sq_norms, dots


def pseudo_label_gradients(
    module, X_pool, X_labeled, y_labeled, *, probabilities=False, loss_fn=None, names=None
):
    """``(g, G)`` as NumPy float64: every pool sample's gradient at its pseudo label (rows)
    and the labeled set's summed gradient; module in eval mode, its mode restored.

    The loss is ``loss_fn(outputs, targets)`` (summed over the batch of one) or, without
    one, :func:`dynamical_loss` of ``probabilities``.
    """
    loss_fn = loss_fn or dynamical_loss(probabilities)
    was_training = module.training
    module.eval()
    try:
        dtype = next(iter(_parameters(module, names).values())).dtype
        pool = torch.as_tensor(np.asarray(X_pool), dtype=dtype)
        labeled = torch.as_tensor(np.asarray(X_labeled), dtype=dtype)
        with torch.no_grad():
            pseudo = torch.stack([module(pool[u : u + 1])[0].argmax() for u in range(len(pool))])
        y = torch.as_tensor(np.asarray(y_labeled).astype(np.int64))
        g = per_sample_gradients(module, loss_fn, pool, pseudo, names)
        G = per_sample_gradients(module, loss_fn, labeled, y, names).sum(0)
    finally:
        module.train(was_training)
    return g.numpy(), G.numpy()


def delta_terms(module, X_pool, X_labeled, y_labeled, **kwargs):
    """``(||g_u||², <g_u, G>)`` for every pool sample as NumPy float64 arrays, so that
    ``Δ = sq_norms + gamma * dots``; keywords as :func:`pseudo_label_gradients`."""
    g, G = pseudo_label_gradients(module, X_pool, X_labeled, y_labeled, **kwargs)
    return np.einsum("up,up->u", g, g), g @ G

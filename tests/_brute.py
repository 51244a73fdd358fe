"""Brute-force dynamicAL scores: one backward pass per sample, explicit sums."""

import numpy as np
import torch


def brute_force_delta_terms(module, X_pool, X_labeled, y_labeled, probabilities):
    """Return ``(sq_norms, dots)`` from a per-sample autograd loop, module in eval mode.

    ``probabilities`` says whether the module outputs probabilities (loss
    ``-log(p_y + eps)``, as skorch's NLLLoss path) or logits (cross-entropy).
    """
    was_training = module.training
    module.eval()
    params = [p for p in module.parameters() if p.requires_grad]
    dtype = params[0].dtype

    def loss_of(x, label):
        out = module(torch.as_tensor(x, dtype=dtype).unsqueeze(0))
        if label is None:
            label = int(out.argmax())
        if probabilities:
            return -torch.log(out[0, label] + torch.finfo(dtype).eps)
        return torch.nn.functional.cross_entropy(out, torch.tensor([label]))

    def flat_grad(loss):
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        pieces = [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
        return torch.cat(pieces)

    G = sum(flat_grad(loss_of(x, int(y))) for x, y in zip(X_labeled, y_labeled, strict=True))
    sq_norms, dots = [], []
    for x in X_pool:
        g = flat_grad(loss_of(x, None))
        sq_norms.append(float(g @ g))
        dots.append(float(g @ G))
    module.train(was_training)
    return np.array(sq_norms), np.array(dots)

"""Class probabilities and layer embeddings of a fitted net, computed in batches."""

import torch
from skorch.dataset import Dataset as SkorchDataset

from .._adapter import eval_mode
from .._streaming import map_pool
from .._validation import NonFiniteValues

__all__ = [
    "batch_embeddings",
    "batch_probabilities",
    "check_probabilities",
    "embeddings",
    "predict_nonlinearity",
    "predict_probabilities",
    "resolve_embedding_layer",
]

_PROBABILITY_ATOL = 1e-3


def predict_nonlinearity(net):
    """The function the net's ``predict_proba`` applies to the module output.

    skorch's ``NeuralNetClassifier`` applies softmax when its criterion is
    ``CrossEntropyLoss`` and nothing when it is ``NLLLoss`` (the module then returns
    probabilities); ``predict_nonlinearity`` overrides both.
    """
    get = getattr(net, "_get_predict_nonlinearity", None)
    if get is None:
        return lambda outputs: outputs
    return get()


def check_probabilities(probabilities, offset=0):
    """Raise unless ``probabilities`` is ``(B, n_classes)``, non-negative, rows summing to 1.

    Non-finite rows raise :class:`~skdynal._validation.NonFiniteValues` naming them
    (``offset`` is the batch's first pool row), which the strategy explains.
    """
    if probabilities.dim() != 2:
        raise ValueError(
            "Expected class probabilities of shape (n_samples, n_classes) from the net's "
            f"predict_proba semantics, got shape {tuple(probabilities.shape)}."
        )
    atol = _PROBABILITY_ATOL
    if probabilities.is_floating_point():
        atol = max(atol, 4 * torch.finfo(probabilities.dtype).eps)  # float16, bfloat16
    finite = torch.isfinite(probabilities).all(dim=1)
    if not bool(finite.all()):
        rows = torch.nonzero(~finite).reshape(-1).cpu().numpy() + offset
        raise NonFiniteValues("class probabilities", rows)
    sums = probabilities.sum(dim=1)
    if bool((probabilities < -atol).any()) or bool(((sums - 1).abs() > atol).any()):
        raise ValueError(
            "The net's outputs after its predict nonlinearity are not probabilities (rows "
            "must be non-negative and sum to 1). With CrossEntropyLoss the module should "
            "return logits, with NLLLoss probabilities; for any other criterion set the "
            "net's predict_nonlinearity."
        )
    return probabilities


def batch_probabilities(adapter, X_batch):
    """Class probabilities of one batch, as the net's ``predict_proba`` defines them.

    The caller puts the module in ``eval()`` mode (the pool loop does); no gradients.

    Returns
    -------
    probabilities : torch.Tensor of shape (batch, n_classes)
    """
    with torch.no_grad():
        outputs = adapter.forward(X_batch)
        return check_probabilities(predict_nonlinearity(adapter.net)(outputs))


def predict_probabilities(adapter, X, batch_size=None, source="pool"):
    """Class probabilities of every row of ``X``, as the net's ``predict_proba`` defines them.

    Computed through the pool loop (:func:`~skdynal._streaming.map_pool`) with the module
    in ``eval()`` mode and its previous modes restored.

    Returns
    -------
    probabilities : ndarray of shape (n_rows, n_classes), dtype float64
    """
    with eval_mode(adapter.module):
        return map_pool(
            adapter,
            X,
            lambda X_batch: batch_probabilities(adapter, X_batch),
            batch_size=batch_size,
            source=source,
            quantity="class probabilities",
        )


def resolve_embedding_layer(module, name=None):
    """The submodule whose input is the embedding: the last ``nn.Linear``, or ``name``.

    Parameters
    ----------
    module : torch.nn.Module
    name : str or None
        A name from ``module.named_modules()``; ``None`` takes the last ``torch.nn.Linear``
        in that order.

    Returns
    -------
    name : str
    layer : torch.nn.Module
    """
    if name is None:
        linears = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
        if not linears:
            raise ValueError(
                f"The module {type(module).__name__} has no torch.nn.Linear layer, so there "
                "is no default embedding; name the layer whose input is the embedding with "
                "embedding_layer='<name from module.named_modules()>'."
            )
        return linears[-1]
    if not isinstance(name, str):
        raise TypeError(f"embedding_layer must be a module name (str) or None, got {name!r}.")
    layers = dict(module.named_modules())
    if name not in layers:
        available = [n for n in layers if n]
        shown = ", ".join(repr(n) for n in available[:20])
        more = f" and {len(available) - 20} more" if len(available) > 20 else ""
        raise ValueError(
            f"embedding_layer={name!r} is not a submodule of {type(module).__name__}; "
            f"names from module.named_modules() are: {shown}{more}."
        )
    return name, layers[name]


class _LayerCapture:
    """Forward hook keeping a layer's input; with ``detach_output`` its output becomes a leaf
    tensor that requires grad, so the loss gradient w.r.t. the layer output is cheap."""

    def __init__(self, name, detach_output):
        self.name = name
        self.detach_output = detach_output
        self.inputs = []
        self.outputs = []

    def __call__(self, layer, args, output):
        if not args or not torch.is_tensor(args[0]):
            raise ValueError(
                f"The embedding layer {self.name!r} is not called with a tensor as its first "
                "argument; choose another embedding_layer."
            )
        self.inputs.append(args[0].detach())
        if not self.detach_output:
            return None
        if not torch.is_tensor(output):
            raise ValueError(
                f"The embedding layer {self.name!r} does not return a tensor; choose a layer "
                "such as the classifier's last torch.nn.Linear."
            )
        leaf = output.detach().requires_grad_(True)
        self.outputs.append(leaf)
        return leaf

    def take(self, n_rows):
        if len(self.inputs) != 1:
            raise ValueError(
                f"The embedding layer {self.name!r} ran {len(self.inputs)} times in one "
                "forward pass; choose a layer that runs exactly once per forward."
            )
        inputs = self.inputs[0]
        output = self.outputs[0] if self.outputs else None
        self.inputs, self.outputs = [], []
        if inputs.dim() == 0 or inputs.shape[0] != n_rows:
            raise ValueError(
                f"The input of the embedding layer {self.name!r} has shape "
                f"{tuple(inputs.shape)}, not one row per sample ({n_rows}, ...)."
            )
        return inputs, output


def batch_embeddings(adapter, X_batch, *, layer_name=None, output_gradients=False):
    """Input of the embedding layer for one batch (the per-batch hook of Coreset and BADGE).

    The caller puts the module in ``eval()`` mode (the pool loop does). The layer's input
    is kept by a forward hook that lives for this one forward pass.

    Parameters
    ----------
    adapter : NetAdapter
    X_batch : torch.Tensor or dict of torch.Tensor
        A batch of rows on the module's device.
    layer_name : str or None
        See :func:`resolve_embedding_layer`.
    output_gradients : bool
        Also return, for every row, the gradient of the net's own loss at the pseudo label
        ``argmax f(x)`` w.r.t. the layer's output (BADGE's ``a`` in ``g = a ⊗ h``).

    Returns
    -------
    H : torch.Tensor of shape (batch, n_features), float64
        Layer inputs, flattened per row.
    A : torch.Tensor of shape (batch, n_outputs), float64
        Only with ``output_gradients``: the output gradients, returned as ``(H, A)``.
    """
    module = adapter.module
    name, layer = resolve_embedding_layer(module, layer_name)
    capture = _LayerCapture(name, detach_output=output_gradients)
    handle = layer.register_forward_hook(capture)
    try:
        with torch.set_grad_enabled(output_gradients):
            raw = adapter.forward_raw(X_batch)
    finally:
        handle.remove()
    n_rows = adapter.forward_first(raw).shape[0]
    inputs, layer_output = capture.take(n_rows)
    H = inputs.reshape(n_rows, -1).double()
    if not output_gradients:
        return H
    if inputs.dim() != 2 or layer_output.dim() != 2:
        raise ValueError(
            f"BADGE needs an embedding layer applied to one feature vector per sample; "
            f"{name!r} maps {tuple(inputs.shape)} to {tuple(layer_output.shape)}. Choose a "
            "layer with 2-D input and output, such as the last torch.nn.Linear."
        )
    with torch.enable_grad():
        loss = adapter.pseudo_label_loss()(raw).sum()
        (grad,) = torch.autograd.grad(loss, layer_output)
    return H, grad.detach().double()


def embeddings(
    adapter,
    X,
    *,
    layer_name=None,
    batch_size=None,
    output_gradients=False,
    source="pool",
):
    """:func:`batch_embeddings` of every row of ``X``, through the pool loop.

    Runs :func:`~skdynal._streaming.map_pool` with the module in ``eval()`` mode (its
    previous modes restored), so rows are sliced lazily, ``Dataset`` rows are checked for
    NaN, and non-finite embeddings raise
    :class:`~skdynal._validation.NonFiniteValues` naming the rows of ``source``.

    Parameters
    ----------
    adapter : NetAdapter
    X : array-like or torch.utils.data.Dataset
        Rows to embed.
    layer_name : str or None
        See :func:`resolve_embedding_layer`.
    batch_size : int or None
        Rows per forward pass (``None``: :meth:`NetAdapter.batch_size_for`'s rule).
    output_gradients : bool
        Also return the output gradients (see :func:`batch_embeddings`).
    source : {"pool", "labeled set"}, default="pool"
        Whose rows ``X`` holds, named when an embedding is NaN or infinite.

    Returns
    -------
    H : torch.Tensor of shape (n_rows, n_features), float64, on the module's device
        Layer inputs, flattened per row.
    A : torch.Tensor of shape (n_rows, n_outputs), float64, or None
        Output gradients when ``output_gradients``.
    """
    if isinstance(X, dict):
        # A dict of arrays (one per keyword of the module's forward), as skorch accepts for
        # the labeled set; the pool loop slices a Dataset of it (check_pool does the same).
        X = SkorchDataset(X)
    with eval_mode(adapter.module):
        outputs = map_pool(
            adapter,
            X,
            lambda X_batch: batch_embeddings(
                adapter, X_batch, layer_name=layer_name, output_gradients=output_gradients
            ),
            batch_size=batch_size,
            source=source,
            quantity="gradient embeddings" if output_gradients else "embeddings",
        )
    arrays = outputs if output_gradients else (outputs, None)
    return tuple(
        None if array is None else torch.as_tensor(array, device=adapter.device)
        for array in arrays
    )

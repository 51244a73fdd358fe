"""Architecture families A(B, i, j) for incremental neural architecture search.

A structure ``(blocks, stacks)`` names one member of a family: ``stacks`` stages of
``blocks`` building blocks each, the width doubling from one stack to the next. The
paper writes the same structure as a list with one entry per stack, ``[blocks] * stacks``.
"""

import numbers
from typing import ClassVar

import torch
from torch import nn

from .._checks import InvalidParameterError, StrictInterval, validate_parameter_constraints

__all__ = [
    "FAMILIES",
    "ArchitectureFamily",
    "CNNFamily",
    "MLPFamily",
    "ResNetFamily",
    "StackedCNN",
    "StackedMLP",
    "StackedResNet",
    "check_structure",
]


def check_structure(structure):
    """Validate a structure and return it as a tuple of two Python ints.

    Parameters
    ----------
    structure : tuple of (int, int)
        ``(blocks per stack, number of stacks)``, both at least 1.

    Returns
    -------
    structure : tuple of (int, int)

    Raises
    ------
    InvalidParameterError
        (a ``ValueError`` and a ``TypeError``) unless ``structure`` is a pair of ints >= 1.
    """
    try:
        blocks, stacks = structure
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"structure must be a pair (blocks per stack, stacks), got {structure!r}."
        ) from None
    for value, name in ((blocks, "blocks per stack"), (stacks, "number of stacks")):
        if not _POSITIVE_INT[0].is_satisfied_by(value):
            raise InvalidParameterError(
                f"The {name} of a structure must be an int >= 1, got {value!r}."
            )
    return int(blocks), int(stacks)


_POSITIVE_INT = [StrictInterval(numbers.Integral, 1, None, closed="left")]
_DROPOUT = [StrictInterval(numbers.Real, 0, 1, closed="left")]

#: Constraints on the parameters of the stacked members, shared with their families.
_MEMBER_CONSTRAINTS = {
    "blocks": _POSITIVE_INT,
    "stacks": _POSITIVE_INT,
    "in_channels": _POSITIVE_INT,
    "n_features": _POSITIVE_INT,
    "n_classes": _POSITIVE_INT,
    "width": _POSITIVE_INT,
    "head_pool": _POSITIVE_INT,
    "dropout": _DROPOUT,
}


def _constraints(*names):
    return {name: _MEMBER_CONSTRAINTS[name] for name in names}


def _check_member(owner, params):
    """Check ``params`` against ``owner``'s ``_parameter_constraints`` (once per call)."""
    validate_parameter_constraints(
        owner._parameter_constraints, params, caller_name=type(owner).__name__
    )


def _head(channels, n_classes, dropout, pool=1):
    """Average pooling to ``pool x pool``, flatten, optional dropout, a linear layer."""
    layers = [nn.AdaptiveAvgPool2d(pool), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(channels * pool**2, n_classes))
    return nn.Sequential(*layers)


def _conv_bn(in_channels, out_channels, kernel_size=3, stride=1):
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    )


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and an identity (or 1x1 conv-BN projection) shortcut."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = _conv_bn(in_channels, out_channels, stride=stride)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv_bn(out_channels, out_channels)
        self.shortcut = (
            _conv_bn(in_channels, out_channels, kernel_size=1, stride=stride)
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )
        self.relu2 = nn.ReLU()

    def forward(self, x):
        return self.relu2(self.conv2(self.relu1(self.conv1(x))) + self.shortcut(x))


class StackedResNet(nn.Module):
    """The paper's residual family A(B, i, j): ``stacks`` stacks of ``blocks`` basic blocks.

    A fixed stem (3x3 conv-BN-ReLU with ``width`` channels, then 3x3 max pooling with
    stride 2), then ``stacks`` stacks of ``blocks`` residual blocks (two 3x3 conv-BN layers,
    identity shortcut; the first block of every stack after the first halves the resolution
    with stride 2, doubles the channels and uses a 1x1 conv-BN shortcut), then global average
    pooling, optional dropout and a linear layer. Returns logits: pair it with
    ``criterion=torch.nn.CrossEntropyLoss`` in skorch. Works for any input size (28x28,
    32x32, 8x8).

    Parameters
    ----------
    blocks : int, default=1
        Residual blocks per stack (i).
    stacks : int, default=1
        Number of stacks (j).
    in_channels : int, default=3
        Input channels.
    n_classes : int, default=10
        Number of classes (output logits).
    width : int, default=64
        Channels of the stem and the first stack (the paper's value is 64).
    dropout : float, default=0.0
        Dropout before the linear layer (the paper's MC-dropout position).

    References
    ----------
    .. [1] Y. Geifman and R. El-Yaniv, "Deep Active Learning with a Neural Architecture
       Search", NeurIPS 2019.
    """

    _parameter_constraints: ClassVar[dict] = _constraints(
        "blocks", "stacks", "in_channels", "n_classes", "width", "dropout"
    )

    def __init__(self, blocks=1, stacks=1, in_channels=3, n_classes=10, width=64, dropout=0.0):
        super().__init__()
        _check_member(
            self,
            {
                "blocks": blocks,
                "stacks": stacks,
                "in_channels": in_channels,
                "n_classes": n_classes,
                "width": width,
                "dropout": dropout,
            },
        )
        self.stem = nn.Sequential(
            _conv_bn(in_channels, width),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        layers = []
        channels = width
        for stack in range(stacks):
            out_channels = width * 2**stack
            for block in range(blocks):
                stride = 2 if stack > 0 and block == 0 else 1
                layers.append(_BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.body = nn.Sequential(*layers)
        self.head = _head(channels, n_classes, dropout)

    def forward(self, X):
        return self.head(self.body(self.stem(X)))


class StackedCNN(nn.Module):
    """Plain convolutional family for small images: ``stacks`` stacks of ``blocks`` convs.

    A fixed stem (3x3 conv-BN-ReLU with ``width`` channels and 2x2 max pooling: 28x28 ->
    14x14, 32x32 -> 16x16), then ``stacks`` stacks of ``blocks`` 3x3 conv-BN-ReLU layers;
    stack ``s`` has ``width * 2**s`` channels and every stack after the first starts by
    halving the resolution with 2x2 max pooling (28x28 inputs: 14, 7, 4, 2, ...). The head
    average-pools to ``head_pool x head_pool``, flattens, applies optional dropout and a
    linear layer. A small ``head_pool`` above 1 keeps some spatial layout, so the shallow
    members are usable classifiers rather than bags of local features.

    Parameters
    ----------
    blocks : int, default=1
        Convolutions per stack (i).
    stacks : int, default=1
        Number of stacks (j).
    in_channels : int, default=1
        Input channels (1 for Fashion-MNIST, 3 for CIFAR-10 or SVHN).
    n_classes : int, default=10
        Number of classes.
    width : int, default=16
        Channels of the stem and the first stack.
    dropout : float, default=0.0
        Dropout before the linear layer.
    head_pool : int, default=2
        Output size of the adaptive average pooling before the linear layer (1 is global
        average pooling).
    """

    _parameter_constraints: ClassVar[dict] = _constraints(
        "blocks", "stacks", "in_channels", "n_classes", "width", "dropout", "head_pool"
    )

    def __init__(
        self,
        blocks=1,
        stacks=1,
        in_channels=1,
        n_classes=10,
        width=16,
        dropout=0.0,
        head_pool=2,
    ):
        super().__init__()
        _check_member(
            self,
            {
                "blocks": blocks,
                "stacks": stacks,
                "in_channels": in_channels,
                "n_classes": n_classes,
                "width": width,
                "dropout": dropout,
                "head_pool": head_pool,
            },
        )
        self.stem = nn.Sequential(
            _conv_bn(in_channels, width), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)
        )
        layers = []
        channels = width
        for stack in range(stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            out_channels = width * 2**stack
            for _ in range(blocks):
                layers += [_conv_bn(channels, out_channels), nn.ReLU()]
                channels = out_channels
        self.body = nn.Sequential(*layers)
        self.head = _head(channels, n_classes, dropout, pool=head_pool)

    def forward(self, X):
        return self.head(self.body(self.stem(X)))


class _ResidualLinear(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.relu(self.linear(x))


class StackedMLP(nn.Module):
    """Fully connected family for flat features: ``stacks`` stacks of ``blocks`` layers.

    Stack ``s`` has width ``width * 2**s``. Its first block is ``Linear - ReLU`` into that
    width; the other ``blocks - 1`` are residual, ``x + ReLU(Linear(x))``, so deep members
    stay trainable. Optional dropout after every stack, then a linear layer gives the
    logits. Inputs of any shape ``(N, ...)`` are flattened first.

    Parameters
    ----------
    blocks : int, default=1
        Layers per stack (i): the depth.
    stacks : int, default=1
        Number of stacks (j): widths ``width, 2 width, ..., 2**(j-1) width``.
    n_features : int, default=64
        Input features after flattening (64 for scikit-learn's digits).
    n_classes : int, default=10
        Number of classes.
    width : int, default=32
        Width of the first stack.
    dropout : float, default=0.0
        Dropout after every stack (needed by MC-dropout strategies such as BALD).
    """

    _parameter_constraints: ClassVar[dict] = _constraints(
        "blocks", "stacks", "n_features", "n_classes", "width", "dropout"
    )

    def __init__(self, blocks=1, stacks=1, n_features=64, n_classes=10, width=32, dropout=0.0):
        super().__init__()
        _check_member(
            self,
            {
                "blocks": blocks,
                "stacks": stacks,
                "n_features": n_features,
                "n_classes": n_classes,
                "width": width,
                "dropout": dropout,
            },
        )
        layers = [nn.Flatten()]
        previous = n_features
        for stack in range(stacks):
            out = width * 2**stack
            layers += [nn.Linear(previous, out), nn.ReLU()]
            layers += [_ResidualLinear(out) for _ in range(blocks - 1)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = out
        layers.append(nn.Linear(previous, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


class ArchitectureFamily:
    """A family of networks indexed by a structure ``(blocks per stack, stacks)``.

    Calling the family with a structure returns a freshly initialised ``nn.Module``
    (drawing its weights from torch's global generator). :class:`~skdynal.nas.INASLearner`
    puts a member into a skorch net as ``module=family.module_class`` plus
    ``module__<name>=value`` for every entry of :meth:`module_params`, so skorch itself
    builds and re-initialises it.

    Subclasses set ``module_class``, store their keyword arguments as attributes of the
    same name (listed in ``_param_names``) and declare their constraints in
    ``_parameter_constraints``, checked once per :meth:`module_params` call.
    """

    module_class = None
    _param_names = ()
    _parameter_constraints: ClassVar[dict] = {}

    def module_params(self, structure):
        """Keyword arguments of ``module_class`` for ``structure``.

        Parameters
        ----------
        structure : tuple of (int, int)
            ``(blocks per stack, stacks)``.

        Returns
        -------
        params : dict
        """
        params = self.get_params()
        _check_member(self, params)
        blocks, stacks = check_structure(structure)
        params.update(blocks=blocks, stacks=stacks)
        return params

    def __call__(self, structure):
        return self.module_class(**self.module_params(structure))

    def n_parameters(self, structure):
        """Number of trainable parameters of the member ``structure``."""
        with torch.random.fork_rng(devices=[]):
            module = self(structure)
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_params() == other.get_params()

    def __hash__(self):
        return hash((type(self), tuple(self.get_params().items())))


class ResNetFamily(ArchitectureFamily):
    """The paper's ResNet family A(B, i, j), members :class:`StackedResNet`.

    Parameters
    ----------
    in_channels : int, default=3
        Input channels.
    n_classes : int, default=10
        Number of classes.
    width : int, default=64
        Channels of the stem and the first stack (64 in the paper).
    dropout : float, default=0.0
        Dropout before the linear layer.

    Examples
    --------
    >>> import torch
    >>> from skdynal.nas import ResNetFamily
    >>> family = ResNetFamily(in_channels=1, width=8)
    >>> family((2, 3))(torch.zeros(4, 1, 28, 28)).shape
    torch.Size([4, 10])

    References
    ----------
    .. [1] Y. Geifman and R. El-Yaniv, "Deep Active Learning with a Neural Architecture
       Search", NeurIPS 2019.
    """

    module_class = StackedResNet
    _param_names = ("in_channels", "n_classes", "width", "dropout")
    _parameter_constraints: ClassVar[dict] = _constraints(*_param_names)

    def __init__(self, in_channels=3, n_classes=10, width=64, dropout=0.0):
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.width = width
        self.dropout = dropout


class CNNFamily(ArchitectureFamily):
    """Plain conv-BN-ReLU family for 28x28 and 32x32 images, members :class:`StackedCNN`.

    Parameters
    ----------
    in_channels : int, default=1
        Input channels.
    n_classes : int, default=10
        Number of classes.
    width : int, default=16
        Channels of the first stack.
    dropout : float, default=0.0
        Dropout before the linear layer.
    head_pool : int, default=2
        Side of the average-pooled grid the linear layer sees (1: global pooling).

    Examples
    --------
    >>> import torch
    >>> from skdynal.nas import CNNFamily
    >>> CNNFamily(width=4)((1, 2))(torch.zeros(3, 1, 28, 28)).shape
    torch.Size([3, 10])
    """

    module_class = StackedCNN
    _param_names = ("in_channels", "n_classes", "width", "dropout", "head_pool")
    _parameter_constraints: ClassVar[dict] = _constraints(*_param_names)

    def __init__(self, in_channels=1, n_classes=10, width=16, dropout=0.0, head_pool=2):
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.width = width
        self.dropout = dropout
        self.head_pool = head_pool


class MLPFamily(ArchitectureFamily):
    """Fully connected family (depth and width) for tabular data and digits.

    Members are :class:`StackedMLP`: ``blocks`` sets the depth of each stack and
    ``stacks`` the number of width levels (``width * 2**s``).

    Parameters
    ----------
    n_features : int, default=64
        Input features after flattening.
    n_classes : int, default=10
        Number of classes.
    width : int, default=32
        Width of the first stack.
    dropout : float, default=0.0
        Dropout after every stack.

    Examples
    --------
    >>> from skdynal.nas import MLPFamily
    >>> family = MLPFamily(width=16)
    >>> family.n_parameters((1, 1)), family.n_parameters((2, 1))
    (1210, 1482)
    """

    module_class = StackedMLP
    _param_names = ("n_features", "n_classes", "width", "dropout")
    _parameter_constraints: ClassVar[dict] = _constraints(*_param_names)

    def __init__(self, n_features=64, n_classes=10, width=32, dropout=0.0):
        self.n_features = n_features
        self.n_classes = n_classes
        self.width = width
        self.dropout = dropout


#: Ready-made families by name, for runners and command lines.
FAMILIES = {"resnet": ResNetFamily, "cnn": CNNFamily, "mlp": MLPFamily}

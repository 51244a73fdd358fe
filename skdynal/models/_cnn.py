"""The small convolutional network of the dynamicAL experiments."""

import numbers
from typing import ClassVar

from torch import nn

from .._checks import StrictInterval, validate_parameter_constraints

__all__ = ["CNN"]


class CNN(nn.Module):
    """Three 3x3 convolutions with ReLU, global average pooling and a linear classifier.

    The vanilla CNN of the dynamicAL experiments [1]_: ``conv(width) - ReLU -
    conv(2 width, stride 2) - ReLU - conv(4 width, stride 2) - ReLU - global average
    pooling - Linear(4 width, n_classes)``. Padding keeps the size in the first layer;
    the two strided layers halve it (32x32 -> 32, 16, 8). Global pooling makes it work
    for any input size, 8x8 digits included. Returns logits: pair it with
    ``criterion=torch.nn.CrossEntropyLoss`` in skorch.

    Parameters
    ----------
    in_channels : int, default=3
        Input channels (3 for CIFAR-10/SVHN/Caltech101, 1 for digits images).
    n_classes : int, default=10
        Number of classes (output logits).
    width : int, default=32
        Channels of the first convolution; the next two have ``2 * width`` and
        ``4 * width``.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, H. Tong, A. J. Margenot and J. He, "Deep Active
       Learning by Leveraging Training Dynamics", NeurIPS 2022.

    Examples
    --------
    >>> import torch
    >>> from skdynal.models import CNN
    >>> CNN(width=8)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    _parameter_constraints: ClassVar[dict] = {
        "in_channels": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "n_classes": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "width": [StrictInterval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, in_channels=3, n_classes=10, width=32):
        super().__init__()
        validate_parameter_constraints(
            self._parameter_constraints,
            {"in_channels": in_channels, "n_classes": n_classes, "width": width},
            caller_name=type(self).__name__,
        )
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width, n_classes)

    def forward(self, X):
        return self.classifier(self.features(X))

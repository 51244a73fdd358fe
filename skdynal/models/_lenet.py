"""The LeNet-style network of the official dynamicAL code, for 28x28 and 32x32 images."""

import numbers
from typing import ClassVar

from torch import nn

from .._checks import StrictInterval, validate_parameter_constraints

__all__ = ["LeNet"]


class LeNet(nn.Module):
    """Two 5x5 convolutions with max-pooling, then three linear layers (LeNet-5 style).

    ``conv(in_channels, 6, 5) - ReLU - maxpool 2 - conv(6, 16, 5) - ReLU - maxpool 2 -
    flatten - Linear(., 120) - ReLU - Linear(120, 84) - ReLU - Linear(84, n_classes)``,
    no padding. The layer structure of the ``cnn`` model of the official dynamicAL code
    [1]_ (``CNNnet`` in its ``src/models.py``). That one is fixed to 3-channel 32x32
    inputs (16 x 5 x 5 features after the second pooling); here the input channels and
    size are parameters and the flattened size follows from them: 16 x 4 x 4 = 256 for
    28x28 Fashion-MNIST, 16 x 5 x 5 = 400 for 32x32. Returns logits: pair it with
    ``criterion=torch.nn.CrossEntropyLoss`` in skorch.

    Parameters
    ----------
    n_classes : int, default=10
        Number of classes (output logits).
    in_channels : int, default=1
        Input channels (1 for Fashion-MNIST, 3 for CIFAR-10/SVHN).
    image_size : int, default=28
        Height and width of the (square) input images, at least 16.

    References
    ----------
    .. [1] H. Wang, W. Huang, Z. Wu, H. Tong, A. J. Margenot and J. He, "Deep Active
       Learning by Leveraging Training Dynamics", NeurIPS 2022.
    .. [2] Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning
       applied to document recognition", Proceedings of the IEEE, 1998.

    Examples
    --------
    >>> import torch
    >>> from skdynal.models import LeNet
    >>> LeNet()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> LeNet(in_channels=3, image_size=32)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_classes": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "in_channels": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "image_size": [StrictInterval(numbers.Integral, 16, None, closed="left")],
    }

    def __init__(self, n_classes=10, in_channels=1, image_size=28):
        super().__init__()
        validate_parameter_constraints(
            self._parameter_constraints,
            {"n_classes": n_classes, "in_channels": in_channels, "image_size": image_size},
            caller_name=type(self).__name__,
        )
        # Each 5x5 convolution (no padding) removes 4 pixels, each pooling halves.
        side = ((image_size - 4) // 2 - 4) // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, n_classes),
        )

    def forward(self, X):
        return self.classifier(self.features(X))

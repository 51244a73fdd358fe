"""torchvision's ResNet18 with the small-image stem used for 32x32 inputs."""

import numbers
from typing import ClassVar

from torch import nn

from .._checks import StrictInterval, validate_parameter_constraints
from .._torchvision import import_torchvision

__all__ = ["ResNet18"]

_tv_resnet = import_torchvision().models.resnet


class ResNet18(_tv_resnet.ResNet):
    """ResNet18 for 32x32 images: torchvision's definition with a 3x3 stride-1 stem.

    Built from :class:`torchvision.models.ResNet` with ``BasicBlock`` and layers
    ``[2, 2, 2, 2]`` (what ``torchvision.models.resnet18`` builds), randomly initialised
    (no pretrained weights, no download). As is usual for CIFAR-sized inputs [2]_, the
    7x7 stride-2 first convolution becomes a 3x3 stride-1 one and the max-pool is removed,
    so a 32x32 image reaches the last stage at 4x4 instead of 1x1. Returns logits: pair it
    with ``criterion=torch.nn.CrossEntropyLoss`` in skorch.

    Parameters
    ----------
    in_channels : int, default=3
        Input channels.
    n_classes : int, default=10
        Number of classes (output logits).

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren and J. Sun, "Deep Residual Learning for Image
       Recognition", CVPR 2016.
    .. [2] H. Wang, W. Huang, Z. Wu, H. Tong, A. J. Margenot and J. He, "Deep Active
       Learning by Leveraging Training Dynamics", NeurIPS 2022.
    """

    _parameter_constraints: ClassVar[dict] = {
        "in_channels": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "n_classes": [StrictInterval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, in_channels=3, n_classes=10):
        validate_parameter_constraints(
            self._parameter_constraints,
            {"in_channels": in_channels, "n_classes": n_classes},
            caller_name=type(self).__name__,
        )
        super().__init__(_tv_resnet.BasicBlock, [2, 2, 2, 2], num_classes=n_classes)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        # Same initialisation torchvision gives its own convolutions.
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.maxpool = nn.Identity()

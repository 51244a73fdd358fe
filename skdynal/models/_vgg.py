"""torchvision's VGG11 feature extractor with a classifier sized for 32x32 inputs."""

import numbers
from typing import ClassVar

from torch import nn

from .._checks import StrictInterval, validate_parameter_constraints
from .._torchvision import import_torchvision

__all__ = ["VGG11"]

_tv_vgg = import_torchvision().models.vgg


class VGG11(nn.Module):
    """VGG11 for 32x32 images: torchvision's convolutional stack, one linear classifier.

    The features are torchvision's configuration "A" (``vgg11`` / ``vgg11_bn``: eight 3x3
    convolutions, five max-pools), randomly initialised (no download). A 32x32 image leaves
    them as 512x1x1, so torchvision's 7x7 adaptive pool and 4096-wide classifier (built
    for 224x224) are replaced by global average pooling and ``Linear(512, n_classes)``,
    the usual CIFAR variant [2]_. Global pooling also accepts larger inputs. Initialised
    as torchvision initialises VGG. Returns logits: pair it with
    ``criterion=torch.nn.CrossEntropyLoss`` in skorch.

    Parameters
    ----------
    in_channels : int, default=3
        Input channels.
    n_classes : int, default=10
        Number of classes (output logits).
    batch_norm : bool, default=True
        Use BatchNorm after every convolution (``vgg11_bn``); False gives plain ``vgg11``.

    References
    ----------
    .. [1] K. Simonyan and A. Zisserman, "Very Deep Convolutional Networks for
       Large-Scale Image Recognition", ICLR 2015.
    .. [2] H. Wang, W. Huang, Z. Wu, H. Tong, A. J. Margenot and J. He, "Deep Active
       Learning by Leveraging Training Dynamics", NeurIPS 2022.
    """

    _parameter_constraints: ClassVar[dict] = {
        "in_channels": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "n_classes": [StrictInterval(numbers.Integral, 1, None, closed="left")],
        "batch_norm": ["boolean"],
    }

    def __init__(self, in_channels=3, n_classes=10, batch_norm=True):
        super().__init__()
        validate_parameter_constraints(
            self._parameter_constraints,
            {"in_channels": in_channels, "n_classes": n_classes, "batch_norm": batch_norm},
            caller_name=type(self).__name__,
        )
        self.features = _tv_vgg.make_layers(_tv_vgg.cfgs["A"], batch_norm=bool(batch_norm))
        if in_channels != 3:
            first = self.features[0]
            self.features[0] = nn.Conv2d(in_channels, first.out_channels, kernel_size=3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, n_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, X):
        return self.classifier(self.pool(self.features(X)).flatten(1))

"""Networks of the dynamicAL experiments, usable as skorch ``module`` classes.

Every class takes plain keyword arguments with defaults (so skorch's ``module__width=...``
works) and returns class logits: use them with ``criterion=torch.nn.CrossEntropyLoss``.
No pretrained weights are ever downloaded.

- ``"mlp"``: :class:`MLP`, a fully connected ReLU network (digits);
- ``"cnn"``: :class:`CNN`, three convolutions, global average pooling, a linear layer;
- ``"lenet"``: :class:`LeNet`, the official code's LeNet-style network (28x28, 32x32);
- ``"resnet18"``: :class:`ResNet18`, torchvision's ResNet18 with a 3x3 stride-1 stem;
- ``"vgg11"``: :class:`VGG11`, torchvision's VGG11(-BN) features and ``Linear(512, .)``.
"""

from ._cnn import CNN
from ._lenet import LeNet
from ._mlp import MLP
from ._registry import MODELS, get_model, get_model_class
from ._resnet import ResNet18
from ._vgg import VGG11

__all__ = [
    "CNN",
    "MLP",
    "MODELS",
    "VGG11",
    "LeNet",
    "ResNet18",
    "get_model",
    "get_model_class",
]

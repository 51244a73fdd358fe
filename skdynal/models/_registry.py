"""Model classes by name, for command lines and experiment configurations."""

from ._cnn import CNN
from ._lenet import LeNet
from ._mlp import MLP
from ._resnet import ResNet18
from ._vgg import VGG11

__all__ = ["MODELS", "get_model", "get_model_class"]

#: Class of every model name accepted by :func:`get_model`.
MODELS = {"mlp": MLP, "cnn": CNN, "lenet": LeNet, "resnet18": ResNet18, "vgg11": VGG11}


def get_model(name, **kwargs):
    """Build the model registered under ``name``.

    Parameters
    ----------
    name : {'mlp', 'cnn', 'lenet', 'resnet18', 'vgg11'}
        Model name (case-insensitive), see :data:`MODELS`.
    **kwargs
        Constructor arguments, e.g. ``n_classes=10, in_channels=3``.

    Returns
    -------
    module : torch.nn.Module
        A freshly initialised model returning logits.

    Examples
    --------
    >>> from skdynal.models import get_model
    >>> type(get_model("cnn", width=8)).__name__
    'CNN'
    """
    return get_model_class(name)(**kwargs)


def get_model_class(name):
    """The class registered under ``name`` (to pass as a skorch ``module``)."""
    key = name.lower() if isinstance(name, str) else name
    try:
        return MODELS[key]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.") from None

"""Dataset loaders by name, for command lines and experiment configurations."""

from ._digits import load_digits_split
from ._fashion_mnist import load_fashion_mnist
from ._images import load_caltech101, load_cifar10, load_svhn
from ._synthetic import load_diverging_sin, load_three_clust
from ._tabular import load_breast_cancer_split

__all__ = ["DATASETS", "canonical_dataset_name", "load_dataset"]

#: Loader of every dataset name accepted by :func:`load_dataset`.
DATASETS = {
    "digits": load_digits_split,
    "cifar10": load_cifar10,
    "svhn": load_svhn,
    "caltech101": load_caltech101,
    "breast_cancer": load_breast_cancer_split,
    "three_clust": load_three_clust,
    "diverging_sin": load_diverging_sin,
    "fashion_mnist": load_fashion_mnist,
}

# Other spellings accepted by load_dataset (kept out of DATASETS so that listings and
# command-line choices show each dataset once).
_ALIASES = {"fashion-mnist": "fashion_mnist"}


def canonical_dataset_name(name):
    """The :data:`DATASETS` key of ``name``, resolving aliases such as ``'fashion-mnist'``.

    Parameters
    ----------
    name : str
        A dataset name or one of its aliases.

    Returns
    -------
    name : str
        The name as a key of :data:`DATASETS` (unknown names are returned unchanged).

    Examples
    --------
    >>> from skdynal.datasets import canonical_dataset_name
    >>> canonical_dataset_name("fashion-mnist")
    'fashion_mnist'
    """
    return _ALIASES.get(name, name) if isinstance(name, str) else name


def load_dataset(name, **kwargs):
    """Call the loader registered under ``name`` with ``kwargs``.

    Parameters
    ----------
    name : {'digits', 'breast_cancer', 'three_clust', 'diverging_sin', 'cifar10', 'svhn', \
            'caltech101', 'fashion_mnist'}
        Dataset name (see :data:`DATASETS`); ``'fashion-mnist'`` is accepted too.
    **kwargs
        Passed to the loader: :func:`load_digits_split` takes no ``root``; the image
        loaders need ``root`` (optional for Fashion-MNIST, which defaults to the Debian
        package's folder) and accept ``download``, ``n_train``, ``n_test``, ``normalize``
        and ``random_state``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``y_train``, ``X_test``, ``y_test``, ``classes``, ``mean``, ``std``,
        ``description``.
    """
    try:
        loader = DATASETS[canonical_dataset_name(name)]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.") from None
    return loader(**kwargs)

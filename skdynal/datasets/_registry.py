"""Dataset loaders by name, for command lines and experiment configurations."""

from ._digits import load_digits_split
from ._images import load_caltech101, load_cifar10, load_svhn
from ._synthetic import load_diverging_sin, load_three_clust
from ._tabular import load_breast_cancer_split

__all__ = ["DATASETS", "load_dataset"]

#: Loader of every dataset name accepted by :func:`load_dataset`.
DATASETS = {
    "digits": load_digits_split,
    "cifar10": load_cifar10,
    "svhn": load_svhn,
    "caltech101": load_caltech101,
    "breast_cancer": load_breast_cancer_split,
    "three_clust": load_three_clust,
    "diverging_sin": load_diverging_sin,
}


def load_dataset(name, **kwargs):
    """Call the loader registered under ``name`` with ``kwargs``.

    Parameters
    ----------
    name : {'digits', 'breast_cancer', 'three_clust', 'diverging_sin', 'cifar10', 'svhn', \
            'caltech101'}
        Dataset name (see :data:`DATASETS`).
    **kwargs
        Passed to the loader: :func:`load_digits_split` takes no ``root``; the image
        loaders need ``root`` and accept ``download``, ``n_train``, ``n_test``,
        ``normalize`` and ``random_state``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``y_train``, ``X_test``, ``y_test``, ``classes``, ``mean``, ``std``,
        ``description``.
    """
    try:
        loader = DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}."
        ) from None
    return loader(**kwargs)

"""Load a dataset by name in the input layout a model expects."""

__all__ = ["load_experiment_data"]

_IMAGE_DATASETS = ("cifar10", "svhn", "caltech101", "fashion_mnist")
#: Datasets generated or shipped with scikit-learn: no folder, no subsets.
_BUILTIN_TABLES = ("breast_cancer", "three_clust", "diverging_sin")


def load_experiment_data(
    dataset,
    model="mlp",
    *,
    data_dir=None,
    download=False,
    n_train=None,
    n_test=None,
    image_size=32,
    verify_checksums=True,
    random_state=0,
):
    """Load ``dataset`` for ``model`` as the arrays :func:`run_experiment` takes.

    Parameters
    ----------
    dataset : str
        Dataset name (see :data:`skdynal.datasets.DATASETS`; ``'fashion-mnist'`` works too).
    model : str, default="mlp"
        Model name. For digits, ``"mlp"`` gets flat ``(N, 64)`` rows and every other model
        ``(N, 1, 8, 8)`` images; for Fashion-MNIST, ``"mlp"`` gets ``(N, 784)`` rows and
        every other model ``(N, 1, 28, 28)`` images.
    data_dir : str or path-like, default=None
        Folder holding the image datasets (required for CIFAR-10, SVHN and Caltech101,
        unused for digits). For Fashion-MNIST, None reads the files installed by Debian's
        ``dataset-fashion-mnist`` package.
    download : bool, default=False
        Download missing image datasets into ``data_dir``.
    n_train, n_test : int or None, default=None
        Keep a random subset of the training / test images (image datasets only).
    image_size : int, default=32
        Caltech101 images are resized to ``image_size x image_size``.
    verify_checksums : bool, default=True
        Check the official md5 of CIFAR-10 and SVHN files; False for stand-in files.
    random_state : int, default=0
        Seed of the train/test split (digits, Caltech101) and of the subsets. Kept fixed
        across the seeds of an experiment, so every seed sees the same test set.

    Returns
    -------
    data : sklearn.utils.Bunch
    """
    from ..datasets import DATASETS, canonical_dataset_name, load_dataset

    dataset = canonical_dataset_name(dataset)
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}.")
    if dataset == "digits":
        data = load_dataset("digits", image=str(model).lower() != "mlp", random_state=random_state)
        if n_train is not None or n_test is not None:
            raise ValueError("n_train and n_test apply to the image datasets, not to digits.")
        return data
    if dataset in _BUILTIN_TABLES:
        if n_train is not None or n_test is not None:
            raise ValueError(f"n_train and n_test apply to the image datasets, not to {dataset}.")
        return load_dataset(dataset, random_state=random_state)
    if dataset == "fashion_mnist":
        data = load_dataset(
            "fashion_mnist",
            root=data_dir,
            download=download,
            n_train=n_train,
            n_test=n_test,
            random_state=random_state,
        )
        if str(model).lower() == "mlp":
            data.X_train = data.X_train.reshape(len(data.X_train), -1)
            data.X_test = data.X_test.reshape(len(data.X_test), -1)
        return data
    if data_dir is None:
        raise ValueError(
            f"{dataset} needs a data folder: pass data_dir (command line: --data-dir DIR), "
            "and download=True (--download) to fetch it if it is not there yet."
        )
    kwargs = dict(
        root=data_dir,
        download=download,
        n_train=n_train,
        n_test=n_test,
        random_state=random_state,
    )
    if dataset == "caltech101":
        kwargs["image_size"] = image_size
    else:
        kwargs["verify_checksums"] = verify_checksums
    return load_dataset(dataset, **kwargs)

"""What Label Studio shows: labeling configurations and task data for pool rows."""

import base64
import mimetypes
import struct
import zlib
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

__all__ = ["array_image_tasks", "image_file_tasks", "label_config", "png_data_uri"]

_DATA_TAGS = {"image": "Image", "text": "Text", "html": "HyperText"}


def label_config(classes, *, data_key="image", data_type="image", from_name="label"):
    """A Label Studio labeling configuration: one single-choice question over ``classes``.

    Parameters
    ----------
    classes : sequence of int or str
        The classes, in the order of the model's outputs; each becomes a choice whose value
        is ``str(class)``.
    data_key : str, default="image"
        The key of the task data shown to the annotator (``$image``).
    data_type : {"image", "text", "html"}, default="image"
        How the data is shown (Label Studio's ``Image``, ``Text`` or ``HyperText`` tag).
    from_name : str, default="label"
        Name of the choice control; the bridge reads answers from it.

    Returns
    -------
    config : str
        The XML configuration.

    References
    ----------
    .. [1] Label Studio documentation, "Labeling configuration": Choices and Choice tags,
       https://labelstud.io/tags/choices
    """
    classes = _check_classes(classes)
    if data_type not in _DATA_TAGS:
        raise ValueError(f"data_type must be one of {sorted(_DATA_TAGS)}, got {data_type!r}.")
    for name, value in (("data_key", data_key), ("from_name", from_name)):
        if not isinstance(value, str) or not value.isidentifier():
            raise ValueError(f"{name} must be a plain identifier, got {value!r}.")
    tag = _DATA_TAGS[data_type]
    choices = "".join(f"<Choice value={quoteattr(str(c))}/>" for c in classes)
    return (
        f'<View><{tag} name="item" value="${data_key}"/>'
        f'<Choices name="{from_name}" toName="item" choice="single" showInLine="true">'
        f"{choices}</Choices></View>"
    )


def _check_classes(classes):
    if isinstance(classes, str | bytes) or not hasattr(classes, "__len__") or not len(classes):
        raise ValueError(f"classes must be a non-empty list of class labels, got {classes!r}.")
    out = []
    for c in classes:
        c = c.item() if isinstance(c, np.generic) else c
        if isinstance(c, bool) or not isinstance(c, int | str):
            raise TypeError(f"each class must be an int or a str, got {c!r}.")
        out.append(c)
    if len({str(c) for c in out}) != len(out):
        raise ValueError(f"classes must be distinct (as text, too), got {out!r}.")
    return out


def png_data_uri(image):
    """A grayscale 8-bit PNG of a 2-D array, as a ``data:`` URI (no imaging library needed).

    The array is scaled linearly from its own minimum (black) to its maximum (white).

    Parameters
    ----------
    image : array-like of shape (height, width)

    Returns
    -------
    uri : str
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2 or a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"image must be a finite, non-empty 2-D array, got shape {a.shape}.")
    lo, hi = a.min(), a.max()
    pixels = np.zeros(a.shape, np.uint8) if hi == lo else (a - lo) / (hi - lo) * 255
    pixels = np.round(pixels).astype(np.uint8)
    height, width = pixels.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def array_image_tasks(X, shape, *, data_key="image", upscale=1):
    """Task data showing each row of an array as a grayscale image.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
        The pool; each row is reshaped to ``shape``.
    shape : tuple of int
        ``(height, width)`` of one image, e.g. ``(8, 8)`` for scikit-learn's digits.
    data_key : str, default="image"
        Key of the image in each task's data (as in :func:`label_config`).
    upscale : int, default=1
        Repeat each pixel this many times in both directions (tiny images stay visible).

    Returns
    -------
    tasks : list of dict
        One ``{data_key: "data:image/png;base64,..."}`` per row.
    """
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X must hold one row per item, got shape {X.shape}.")
    if int(np.prod(shape)) != int(np.prod(X.shape[1:])):
        raise ValueError(f"rows of shape {X.shape[1:]} do not reshape to {tuple(shape)}.")
    if isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 1:
        raise ValueError(f"upscale must be a positive int, got {upscale!r}.")
    ones = np.ones((upscale, upscale))
    return [{data_key: png_data_uri(np.kron(row.reshape(shape), ones))} for row in X]


def image_file_tasks(paths, *, data_key="image"):
    """Task data showing image files, embedded as ``data:`` URIs.

    Embedding needs no storage set-up in Label Studio and works offline; it suits pools of
    a few thousand small images (each task stores its image). For large pools, serve the
    files (Label Studio's local-files storage) and pass their URLs as task data instead.

    Parameters
    ----------
    paths : sequence of path-like
        Image files (PNG, JPEG, GIF, BMP, WebP).
    data_key : str, default="image"

    Returns
    -------
    tasks : list of dict
    """
    tasks = []
    for path in paths:
        path = Path(path)
        kind = mimetypes.guess_type(path.name)[0]
        if kind is None or not kind.startswith("image/"):
            raise ValueError(f"{path} is not an image file (by its extension).")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        tasks.append({data_key: f"data:{kind};base64,{data}"})
    return tasks

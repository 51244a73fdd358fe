"""Import torchvision even when its compiled extension does not match the installed torch.

torchvision wheels from PyPI are built against a CUDA torch. With a CPU-only torch their
``_C`` extension fails to load (torchvision tolerates that: its detection and video ops
become unavailable), but torchvision 0.28's ``_meta_registrations`` then registers fake
kernels for ``torchvision::nms`` and ``torchvision::qnms`` without checking that the
extension defined them, and ``import torchvision`` dies with ``RuntimeError: operator
torchvision::nms does not exist``. Datasets, transforms and models never use those ops.

:func:`import_torchvision` retries such a failed import after declaring the two operator
schemas (no kernels), so the import completes; calling ``torchvision.ops.nms`` still
fails, as it would without the extension. Nothing is changed when torchvision imports
normally.
"""

import sys

import torch

__all__ = ["import_torchvision"]

# Keep the Library alive: torch removes its definitions when the object is collected.
_SCHEMA_LIBRARY = None
_MISSING_OPS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def _declare_missing_ops():
    global _SCHEMA_LIBRARY
    if _SCHEMA_LIBRARY is None:
        library = torch.library.Library("torchvision", "FRAGMENT")
        for name, schema in _MISSING_OPS.items():
            if not hasattr(torch.ops.torchvision, name):
                library.define(schema)
        _SCHEMA_LIBRARY = library


def import_torchvision():
    """Return the ``torchvision`` module, working around a CPU/CUDA extension mismatch.

    Returns
    -------
    torchvision : module
    """
    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _declare_missing_ops()
        import torchvision
    return torchvision

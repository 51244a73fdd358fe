"""Call a module on a batch the way skorch does; imported by the adapter and the gradients."""

__all__ = ["forward"]


def forward(module, inputs):
    """Call ``module`` on ``inputs`` the way skorch does: dicts become keyword arguments."""
    if isinstance(inputs, dict):
        return module(**inputs)
    return module(inputs)

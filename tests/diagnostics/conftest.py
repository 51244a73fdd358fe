"""Fixtures of the diagnostics tests (helpers live in ``_diagnostics_nets``)."""

import pytest
from _diagnostics_nets import make_data, make_net


@pytest.fixture(scope="module")
def ce_net():
    """A fitted float64 MLP returning logits, trained with CrossEntropyLoss."""
    return make_net()


@pytest.fixture(scope="module")
def data():
    X_labeled, y_labeled = make_data(1, 7)
    X_query, y_query = make_data(2, 5)
    return X_labeled, y_labeled, X_query, y_query

"""The ten-line strategy of docs/writing_a_strategy.md works as the page says.

The common contract tests (tests/test_common.py) run it next to every exported strategy;
here: its code is the page's, its scores are what it claims and the page's usage block
runs; tests/distributed/test_ray.py checks that RayScorer returns the same rows as a local
query, on the Ray instance it already runs.
"""

import numpy as np
import torch
from _doc_example import BLOCKS, PseudoLabelLossSampler
from _nets import fitted_net

from skdynal.base import BaseScoringStrategy


def test_the_example_is_ten_lines_of_the_page():
    body = [line for line in BLOCKS[0].splitlines() if line.strip()]
    assert len(body) <= 12  # imports, class, constraints, __init__, score_batch
    assert issubclass(PseudoLabelLossSampler, BaseScoringStrategy)


def test_scores_are_the_loss_at_the_predicted_label(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    net = fitted_net(X_lab, y_lab)
    scores = PseudoLabelLossSampler().score(net, X_pool)
    with torch.no_grad():
        logits = net.module_(torch.as_tensor(X_pool)).double()
    expected = -torch.log_softmax(logits, dim=1).max(dim=1).values.numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    indices, chosen = PseudoLabelLossSampler(random_state=0).select(net, X_pool, 5)
    np.testing.assert_array_equal(chosen, scores[indices])
    np.testing.assert_array_equal(np.sort(chosen)[::-1], np.sort(scores)[::-1][:5])


def test_the_usage_block_runs(labeled_and_pool):
    X_lab, y_lab, X_pool = labeled_and_pool
    namespace = {
        "PseudoLabelLossSampler": PseudoLabelLossSampler,
        "net": fitted_net(X_lab, y_lab),
        "X_init": X_lab,
        "y_init": y_lab,
        "X_pool": X_pool,
    }
    exec(compile(BLOCKS[1], "writing_a_strategy.md", "exec"), namespace)
    assert len(set(np.asarray(namespace["idx"]).tolist())) == 10
    assert namespace["scores"].shape == (len(X_pool),)

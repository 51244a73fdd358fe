"""The README's usage snippet runs as written, and .ci/run calls the README's test command."""

import re
from pathlib import Path

import numpy as np
import torch
from _nets import DigitsMLP

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_usage_snippet_runs(digits):
    snippet = README.split("## Usage", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    X, y = digits
    namespace = {
        "MyModule": DigitsMLP,
        "X_init": X[:50],
        "y_init": y[:50],
        "X_pool": X[50:],
        "y_pool_oracle": y[50:],
    }
    torch.manual_seed(0)
    exec(compile(snippet, "README.md", "exec"), namespace)
    idx, X_query = namespace["idx"], namespace["X_query"]
    assert len(set(np.asarray(idx).tolist())) == 500
    np.testing.assert_array_equal(X_query, X[50:][idx])
    assert len(namespace["learner"].X_training) == 550


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n# the test suite\n(.+?)\n```", README)
    assert len(commands) == 1
    ci_script = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[0] in ci_script

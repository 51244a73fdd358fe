"""``import skdynal.persistence`` (the label journal) does not import torch or skorch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "skorch", "modAL")


def _modules_after(code):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


@pytest.mark.parametrize(
    "code",
    [
        "import skdynal.persistence",
        "import skdynal",
        "from skdynal.persistence import LabelJournal, ResumableLoop, CheckpointWriteError",
        # the journal at work: record a round and commit its labels
        "import tempfile, os\nfrom skdynal.persistence import LabelJournal\n"
        "j = LabelJournal(os.path.join(tempfile.mkdtemp(), 'j.sqlite'), exclusive=True)\n"
        "j.record_round([3, 4]); j.commit_labels([3, 4], [1, 0]); assert len(j) == 2",
    ],
)
def test_the_journal_does_not_import_torch_skorch_or_modal(code):
    assert _modules_after(code) == []


@pytest.mark.slow  # fresh Python processes that import torch
def test_documented_imports_still_work():
    loaded = _modules_after(
        "import skdynal\n"
        "from skdynal import DynamicALSampler, BatchSizeReducedWarning, TiDALNetClassifier\n"
        "assert skdynal.strategies.DynamicALSampler is DynamicALSampler\n"
        "assert set(skdynal.__all__) <= set(dir(skdynal))\n"
        "from skdynal import *\n"
        "assert MarginSampler.__name__ == 'MarginSampler'"
    )
    assert "torch" in loaded and "skorch" in loaded


def test_unknown_attribute_is_an_attribute_error():
    import skdynal

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        skdynal.nope  # noqa: B018


def test_the_adapter_does_not_import_the_gradients_package():
    """The adapter's ``forward`` is ``skdynal._forward``'s, not the gradients package's."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    probe = "import sys, skdynal._adapter\nprint('skdynal.gradients' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["False"]

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # a fresh Python process that imports torchvision
def test_import_torchvision_works_in_a_fresh_interpreter():
    # In this process torchvision is already imported; only a fresh one shows whether the
    # CPU-torch / CUDA-extension workaround lets the import complete.
    code = (
        "from skdynal._torchvision import import_torchvision\n"
        "tv = import_torchvision()\n"
        "import torchvision\n"
        "assert torchvision is tv\n"
        "print(tv.datasets.CIFAR10.base_folder, type(tv.models.resnet18()).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cifar-10-batches-py", "ResNet"]

"""The example strategy of docs/writing_a_strategy.md, run from the page's own text.

The first Python block of the page is executed in this module's namespace, so the class it
defines is importable by name (``_doc_example.PseudoLabelLossSampler``) in the contract
tests and on Ray workers.
"""

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "writing_a_strategy.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)

exec(compile(BLOCKS[0], str(PAGE), "exec"), globals())  # defines PseudoLabelLossSampler

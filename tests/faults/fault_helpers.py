"""Helpers of the fault suite (its `tiny_model` fixture is in tests/conftest.py). The suite: unicomp run as a user runs it (real subprocesses, real files, tiny real
models), fed bad input and killed at exact points. Every test checks three things a user
notices: the exit code, one error line without a traceback, and what is on disk afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file


MIRROR = Path(os.environ["UNICOMP_DATA_DIR"])


def unicomp(*args: str, cwd: Path | None = None, env: dict | None = None, failpoint: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """`unicomp ARGS` in a fresh process; `failpoint` ("NAME:SIGNAL[:N]") delivers a signal there."""
    full = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    full.pop("UNICOMP_FAILPOINT", None)
    if failpoint:
        full["UNICOMP_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "unicomp", *args], capture_output=True, text=True, cwd=cwd,
                          env=full, timeout=timeout, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """Ctrl-C as in a terminal, even when the test session itself was started in the background
    (a shell without job control starts background jobs with SIGINT ignored, and a child Python
    keeps an ignored SIGINT ignored: a failpoint's SIGINT would then do nothing)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def unicomp_all(*commands: dict) -> list[subprocess.CompletedProcess]:
    """Several independent `unicomp` commands (keyword sets for `unicomp`), two at a time: the
    cases of one fault class share a test, and the machine has two cores."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda kw: unicomp(*kw.pop("args"), **kw), [dict(c) for c in commands]))


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """Exit `code`, no traceback, exactly one `error:` line containing every needle."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` (hidden ones too) with a hash of its content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".unicomp-"))


def store_rows(store: Path, sql: str) -> list[tuple]:
    if not store.exists():
        return []
    con = sqlite3.connect(store)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def manifest(folder: Path) -> dict:
    return json.loads((folder / "unicomp.json").read_text())


def edited_copy(src: Path, dst: Path, edit) -> Path:
    """A copy of the model folder `src` whose weights went through `edit(state_dict)`."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != "model.safetensors":
            (dst / f.name).write_bytes(f.read_bytes())
    weights = load_file(src / "model.safetensors")
    edit(weights)
    save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def config_file(tmp: Path, model: Path, *, name: str = "faults", variants: str | None = None, tasks: str = "[arc_easy]",
                limit: int = 4, distance: str = "{windows: 2, seq_len: 32}", extra: str = "") -> Path:
    """A small run config: one task, magnitude and Wanda variants, tiny calibration and distance."""
    tmp.mkdir(parents=True, exist_ok=True)
    variants = variants or ("  - {name: magnitude-50, method: magnitude, options: {sparsity: 0.5}}\n"
                            "  - {name: wanda-50, method: wanda, options: {sparsity: 0.5}}\n")
    path = tmp / f"{name.replace('/', '_')[:40]}.yaml"
    path.write_text(f"""name: {json.dumps(name)}
model: {model}
store: {tmp / 'store.sqlite'}
output_dir: {tmp / 'out'}
evaluation: {{tasks: {tasks}, limit: {limit}, batch_size: 4}}
calibration: {{source: c4, n_samples: 4, seq_len: 32, seed: 0}}
distance: {distance}
{extra}
variants:
{variants}""")
    return path

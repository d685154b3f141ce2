"""Models as units see them: a reference that is loaded only when a unit needs the weights.

A `ModelRef` names a model by what the user wrote (alias, folder, hub id, .gguf) or by the
compress unit that produces it; once known, its fingerprint is what unit keys are made of. The
`ModelPool` keeps the last loaded models of one process, so the base is loaded once for all its
evaluation units and its key, not once per unit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelRef:
    """A model to load (`spec`) or to be produced by the compress unit `produced_by`."""

    label: str  # "base" or the variant's name
    spec: str | None = None
    produced_by: str | None = None
    fingerprint: str | None = None
    record: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def known(self) -> bool:
        return self.spec is not None and self.fingerprint is not None


class ModelPool:
    """Loaded models of this process, most recent last; at most `size` kept (base + one variant)."""

    def __init__(self, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool = False, size: int = 2):
        self.dtype, self.device, self.trust_remote_code, self.size = dtype, device, trust_remote_code, size
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self._pinned: set[str] = set()

    def pin(self, spec: str) -> None:
        """Keep `spec` loaded for the whole run (the base: every distance unit needs it)."""
        self._pinned.add(spec)

    def get(self, spec: str):
        """The loaded model for `spec` (a LoadedModel), loading it if needed."""
        if spec in self._loaded:
            self._loaded.move_to_end(spec)
            return self._loaded[spec]
        unpinned = [k for k in self._loaded if k not in self._pinned]
        for old in unpinned[: max(0, len(self._loaded) + 1 - self.size)]:  # make room before loading
            del self._loaded[old]
        loaded = self.fresh(spec)
        self._loaded[spec] = loaded
        return loaded

    def release_unpinned(self) -> None:
        """Drop every model but the pinned ones (before a compression loads its own fresh copy)."""
        for spec in [k for k in self._loaded if k not in self._pinned]:
            del self._loaded[spec]

    def fresh(self, spec: str):
        """A new copy nobody else holds (compression changes weights in place)."""
        from unicomp.models.loading import load_model

        return load_model(spec, dtype=self.dtype, device=self.device, trust_remote_code=self.trust_remote_code)

    def identify(self, ref: ModelRef) -> ModelRef:
        """Fill in the fingerprint and provenance record of a model given by spec."""
        if ref.spec is not None and ref.fingerprint is None:
            loaded = self.get(ref.spec)
            ref.fingerprint, ref.record = loaded.fingerprint, loaded.record()
        return ref

    def release(self, spec: str) -> None:
        self._loaded.pop(spec, None)

"""Load real models from aliases, local folders, GGUF files, the hub, or PyPI wheels."""

from unicomp.models.aliases import list_aliases
from unicomp.models.fingerprint import fingerprint_model
from unicomp.models.loading import LoadedModel, load_model

__all__ = ["LoadedModel", "load_model", "fingerprint_model", "list_aliases"]

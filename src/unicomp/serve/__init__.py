"""An OpenAI-compatible server over unicomp's in-process engine (`unicomp serve`).

`create_app` builds the FastAPI app for a loaded `LanguageModel`; `server.serve` loads a model
and runs it with uvicorn.
"""

from unicomp.serve.app import create_app

__all__ = ["create_app"]

"""TF-IDF cosine: the offline stand-in for TrustLLM's `text-embedding-ada-002` embeddings.

TrustLLM compares responses by the cosine of OpenAI embeddings (sycophancy persona, AdvInstruction); those
need an API, so unicomp embeds with a TF-IDF model fitted on the texts being compared (one fit per subtask
aggregation: sklearn's `TfidfVectorizer` defaults — lower-cased word unigrams, smooth idf, l2 norm).
It measures word overlap, not meaning: numbers are "similarity (TF-IDF)", not comparable to ada-002's.
"""

from __future__ import annotations

import numpy as np


def tfidf_vectors(texts: list[str]) -> np.ndarray:
    """One l2-normalised TF-IDF row per text, fitted on `texts` themselves (all-zero rows for empty texts)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not any(t.strip() for t in texts):
        return np.zeros((len(texts), 1))
    try:
        return TfidfVectorizer().fit_transform(texts).toarray()
    except ValueError:  # only stop-word-free punctuation: an empty vocabulary
        return np.zeros((len(texts), 1))


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    """Cosine similarity, 0 when either vector is zero (as sklearn's `cosine_similarity`)."""
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    return float(np.dot(u, v) / (nu * nv)) if nu and nv else 0.0

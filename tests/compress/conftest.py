"""Compression tests run tiny models: one intra-op thread is fastest for them, and on a shared,
busy CPU extra threads cost a lot (oversubscription)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

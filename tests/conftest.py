"""Shared pytest configuration for the seg2vid tests."""

import contextlib
import io
import os

import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "notebook: executes a course notebook in a Jupyter kernel (slow; -m 'not notebook')"
    )


@pytest.fixture(scope="module")
def one_thread():
    """Run a test module's torch work on one thread (tiny tensors: a second thread only adds
    synchronisation, and the CI machine has 2 cores), restoring the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def crashing_torch_save(monkeypatch):
    """A context manager inside which ``torch.save`` writes the first half of the file, then
    raises ``OSError`` (a crash, a full disk), whether it was given a file object or a path."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as fh:
                fh.write(half)
        else:
            f.write(half)
        raise OSError("simulated crash half-way through a save")

    @contextlib.contextmanager
    def crashing():
        with monkeypatch.context() as patch:
            patch.setattr(torch, "save", save)
            yield

    return crashing

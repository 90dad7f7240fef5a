"""Shared pytest configuration for the seg2vid tests."""

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

"""Shared pytest configuration for the seg2vid tests."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "notebook: executes a course notebook in a Jupyter kernel (slow; -m 'not notebook')"
    )

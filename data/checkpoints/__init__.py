"""The shipped checkpoints, installed as the package ``seg2vid._shipped`` (see pyproject.toml).

This folder is the repository's home of the small checkpoints our scripts train; this file only
makes it a package so that a wheel carries the files as package data, which
:func:`seg2vid.checkpoints.shipped_checkpoint` reads with :mod:`importlib.resources`.
"""

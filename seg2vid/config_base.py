"""The one dict round trip of every configuration dataclass (models, losses, training, data).

A config is a frozen dataclass that inherits :class:`FrozenConfig`; checkpoints, logs and JSON
files store it as :meth:`FrozenConfig.to_dict` (tuples as lists, as JSON has no tuples) and read
it back with :meth:`FrozenConfig.from_dict` (lists back to tuples; an unknown field is an error
naming it). Checkpoints written before a field existed still load: a missing key takes the
field's default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["FrozenConfig"]

C = TypeVar("C", bound="FrozenConfig")


class FrozenConfig:
    """Mixin of the configuration dataclasses: ``to_dict`` / ``from_dict``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (tuples as lists), for checkpoints, logs and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def check_fields(cls, values: dict[str, Any], where: str = "") -> dict[str, Any]:
        """``values`` with lists as tuples, after checking that every key is a field of ``cls``;
        an unknown key is a ``ValueError`` naming it (prefixed by ``where``, e.g. a file and
        its table) and the known fields. The one unknown-field check of every config."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            prefix = f"{where}: " if where else ""
            raise ValueError(f"{prefix}unknown {cls.__name__} field(s): {unknown}; "
                             f"known: {', '.join(sorted(known))}")
        return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """Inverse of :meth:`to_dict` (lists become tuples); unknown keys are a ``ValueError``
        naming them and the known fields (:meth:`check_fields`)."""
        return cls(**cls.check_fields(values))

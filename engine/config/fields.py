"""Settings fields: a default with its help text and bounds, and the one checker every setting
goes through (a YAML config, a form, a command-line flag), whose errors name the setting.

A field's metadata carries ``help``, its bounds (``min``/``max``) or ``choices``, ``advanced`` for
fields a form may fold away, and for an optional field ``empty``: what leaving it empty means.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import field
from typing import Any


class ConfigError(ValueError):
    """A setting is unknown or out of range; the message names the key and what is allowed."""


def opt(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with its help text and bounds kept next to the default."""
    return field(default=default, metadata={"help": help, **meta})


def base_type(hint: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed) for hints like `int | None`."""
    args = typing.get_args(hint)
    if not args:
        return hint, False
    return next(a for a in args if a is not type(None)), type(None) in args


def _convert(value: Any, base: Any) -> Any:
    """``value`` as a ``base`` (bool, int, float or str); TypeError when it is not one."""
    if base is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise TypeError
    elif base is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError
        return int(value)
    elif base is float:
        if isinstance(value, bool):
            raise TypeError
        value = float(value)
        if not math.isfinite(value):  # nan passes every bound check (all comparisons are False)
            raise ValueError
        return value
    elif base is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise TypeError
        return str(value)
    return value


def coerce(key: str, value: Any, f: dataclasses.Field, hint: Any) -> Any:
    """Check one value against its field's type, bounds and choices; return it coerced."""
    base, optional = base_type(hint)
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise ConfigError(f"{key}: a value is required ({f.metadata.get('help', '')})")
    try:
        value = _convert(value, base)
    except (TypeError, ValueError):
        finite = " (a finite number)" if base is float else ""
        raise ConfigError(f"{key}: expected {getattr(base, '__name__', base)}{finite}, got {value!r}") from None
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{key}: {value} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{key}: {value} is above the maximum {meta['max']}")
    return value


def build(cls: type, values: dict | None, prefix: str, key=lambda prefix, name: f"{prefix}.{name}") -> Any:
    """Instantiate a settings dataclass from a mapping; a bad key is named ``key(prefix, name)``
    (``dpo.beta`` in a config, ``--max-new-tokens`` on a command line)."""
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected a mapping of settings, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{key(prefix, unknown[0])}: unknown setting; {prefix} accepts {', '.join(fields)}")
    return cls(**{k: coerce(key(prefix, k), v, fields[k], hints[k]) for k, v in values.items()})

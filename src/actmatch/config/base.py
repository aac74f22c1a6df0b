"""What every section of params.yaml shares: the strict model base, the YAML reader, the error
messages that name the key path (and, for an unknown key, the keys allowed there), and overlays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from actmatch.core.errors import ParamsError

__all__ = ["ParamsError", "Strict", "RUN_KEY", "GROUP_KEY", "PER_IMAGE_KEY", "read_params", "validate", "format_error",
           "deep_merge", "unique", "first_error"]

M = TypeVar("M", bound=BaseModel)

RUN_KEY = re.compile(r"^[a-z0-9_]+-[a-z0-9_]+$")
GROUP_KEY = re.compile(r"^[a-z0-9_]+(-[a-z0-9_]+)*$")  # explainer groups: amortized run keys
PER_IMAGE_KEY = re.compile(r"^[a-z0-9_]+-[a-z0-9_]+(-[a-z0-9_]+)?$")


class Strict(BaseModel):
    """Unknown keys and wrong types fail at load time; loaded values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def unique(v: list[Any], what: str = "names") -> list[Any]:
    if len(set(v)) != len(v):
        raise ValueError(f"{what} must be unique (got {v})")
    return v


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on ``base``: mappings merged recursively, anything else replaced (a new dict)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _unwrap_optional(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) is not dict and type(None) in get_args(tp) and len(args) == 1:
        return args[0]
    return tp


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Walk ``loc`` (without its last element) through the model's fields; list the keys allowed there."""
    current: Any = model
    for part in loc[:-1]:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def format_error(err: ValidationError, source: str, model: type[BaseModel], prefix: tuple[str, ...] = ()) -> str:
    """One line per invalid value: the key path (``prefix`` first), what is wrong, what was given."""
    lines = [f"{source}: {err.error_count()} invalid value(s):"]
    for e in err.errors():
        path = ".".join(str(p) for p in (*prefix, *e["loc"])) or "<top level>"
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, e["loc"])
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"  {path}: unknown key{hint}")
        elif e["type"] == "missing":
            lines.append(f"  {path}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"  # a whole section is noise
            lines.append(f"  {path}: {msg}{shown}")
    return "\n".join(lines)


def first_error(err: ValidationError) -> str:
    """``where: message (got value)`` of the first error, for messages that wrap a nested model."""
    e = err.errors()[0]
    where = ".".join(str(x) for x in e["loc"])
    return f"{where}: {e['msg']} (got {e.get('input')!r})"


def read_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """The mapping in ``path`` (YAML 1.2, as DVC reads it, so ``1e-3`` is a float)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data["_source"] = str(path)
    return data


def validate(model: type[M], data: dict[str, Any], *keys: str, source: str | None = None) -> M:
    """``data[keys[0]][keys[1]]…`` (or ``data`` itself without keys) as ``model``; a missing key or an
    invalid value raises :class:`ParamsError` naming the full key path."""
    source = source or data.get("_source", "params")
    node: Any = data
    for i, k in enumerate(keys):
        if not isinstance(node, dict) or k not in node:
            raise ParamsError(f"{source}: {'.'.join(keys[:i + 1])}: required key is missing")
        node = node[k]
    if not keys:
        node = {k: v for k, v in node.items() if k != "_source"}
    try:
        return model.model_validate(node)
    except ValidationError as err:
        raise ParamsError(format_error(err, source, model, tuple(keys))) from None

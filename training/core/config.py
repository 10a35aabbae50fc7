"""Configs: a dataclass of defaults, named presets, a JSON file, overrides.

Precedence, lowest first: the dataclass defaults, the preset, the JSON
config file, then `--set key=value` overrides from the command line. Each
value is checked against the field's type, so a typo fails with the name
of the field.
"""

import argparse
import dataclasses
import json
import typing


class ConfigError(ValueError):
    """A config file or override names an unknown field or a bad value."""


def _convert(field, value, origin):
    """Converts `value` (JSON value or override string) to the field type."""
    kind = field.type if isinstance(field.type, type) else None
    if isinstance(field.type, str):
        kind = {"int": int, "float": float, "bool": bool, "str": str}.get(field.type)
    optional = False
    hint = field.type
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, kind = True, args[0] if len(args) == 1 else None
    if isinstance(value, str) and origin == "override":
        if optional and value.lower() in ("none", "null", ""):
            return None
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{field.name}: expected true/false, received {value!r}")
        if kind in (list, tuple) or typing.get_origin(hint) in (list, tuple):
            return [v for v in value.split(",") if v]
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{field.name}: may not be null")
    try:
        if kind is bool and not isinstance(value, bool):
            raise TypeError
        if kind in (int, float, str):
            converted = kind(value)
            if kind is int and isinstance(value, float) and value != int(value):
                raise TypeError
            return converted
    except (TypeError, ValueError):
        raise ConfigError(
            f"{field.name}: expected {getattr(kind, '__name__', kind)}, received {value!r} "
            f"(from {origin})"
        ) from None
    return value


def apply(config, values, origin):
    """Returns a copy of `config` with `values` (a dict) applied."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    updates = {}
    for key, value in values.items():
        if key not in fields:
            close = [name for name in fields if name.startswith(key[:3])]
            raise ConfigError(
                f"unknown config field {key!r} (from {origin})"
                + (f"; did you mean {close[0]!r}?" if close else "")
            )
        updates[key] = _convert(fields[key], value, origin)
    return dataclasses.replace(config, **updates)


def load(config_class, presets, preset=None, config_file=None, overrides=()):
    """Builds a config from defaults, a preset, a JSON file and overrides.

    Args:
        config_class: The dataclass of defaults.
        presets: dict of preset name -> dict of field values.
        preset: Optional preset name.
        config_file: Optional path of a JSON object of field values.
        overrides: Iterable of `"key=value"` strings.
    """
    config = config_class()
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; choose from {sorted(presets)}")
        config = apply(config, presets[preset], f"preset {preset}")
    if config_file:
        try:
            with open(config_file, encoding="utf-8") as handle:
                values = json.load(handle)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{config_file}:{error.lineno}: invalid JSON: {error.msg}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{config_file}: expected a JSON object of config fields")
        config = apply(config, values, config_file)
    parsed = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value.strip()
    return apply(config, parsed, "override")


def add_arguments(parser: argparse.ArgumentParser, presets, default_preset):
    """The command-line options every training script shares."""
    parser.add_argument("--preset", default=default_preset, choices=sorted(presets),
                        help=f"named set of sizes (default {default_preset})")
    parser.add_argument("--config", help="JSON file of config fields")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (repeatable)")
    parser.add_argument("--workdir", help="where checkpoints, logs, plots and exports go")


def save(config, path):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(dataclasses.asdict(config), handle, indent=2, sort_keys=True)

"""glide.Model(**settings) as a config: each setting is a key of the network or the train section
of the config JSON (`glide train --print-config` shows them all), checked against the defaults
the library reports."""
from __future__ import annotations

import copy
import json
from typing import Any, Dict

from . import _glide
from ._errors import ConfigError, Error

Config = Dict[str, Dict[str, Any]]

_DEFAULTS: Config = json.loads(_glide.default_config_json())
# fit() keywords that are train settings of the library's TrainOptions (the others are set when
# the model is made).
FIT_SETTINGS = ("optimizer", "lr", "output_optimizer", "output_lr", "output_eps", "wide_lr",
                "batch", "epochs", "threads", "seed", "max_seconds", "eval_every",
                "eval_points", "rebuild_every", "rebuild_growth", "lr_schedule", "lr_final",
                "lr_decay")


def defaults() -> Config:
    return copy.deepcopy(_DEFAULTS)


def _plain(value: Any, default: Any, key: str) -> Any:
    """A Python value as the JSON the config reader takes: numpy scalars as numbers, True/False
    for on/off (and on/off/auto) switches, one size for a list of sizes, sections merged into
    their defaults."""
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()  # numpy scalar
    if isinstance(default, str) and default in ("on", "off", "auto") and isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(default, list) and isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(default, list) and isinstance(value, tuple):
        return [_plain(v, None, key) for v in value]
    if isinstance(default, list) and isinstance(value, list):
        return [_plain(v, None, key) for v in value]
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"setting '{key}' must be a dict (a section of the config), got "
                              f"{type(value).__name__}")
        merged = copy.deepcopy(default)
        for k, v in value.items():
            merged[k] = _plain(v, default.get(k), f"{key}.{k}")
        return merged
    return value


def apply(config: Config, settings: Dict[str, Any]) -> Config:
    """`config` with `settings` applied: flat keys go to the section that has them (`seed` to
    both), `network={...}` and `train={...}` to theirs."""
    config = copy.deepcopy(config)
    net, train = config["network"], config["train"]
    for key, value in settings.items():
        if key in ("network", "train"):
            section = net if key == "network" else train
            if not isinstance(value, dict):
                raise ConfigError(f"setting '{key}' must be a dict, got {type(value).__name__}")
            for k, v in value.items():
                section[k] = _plain(v, section.get(k), f"{key}.{k}")
        elif key == "seed":
            net["seed"] = train["seed"] = _plain(value, 1, key)
        elif key in net:
            net[key] = _plain(value, net[key], key)
        elif key in train:
            train[key] = _plain(value, train[key], key)
        else:
            raise ConfigError(
                f"unknown setting '{key}' (a key of the config's network or train section: "
                f"{', '.join(sorted(set(net) | set(train)))})")
    return config


def create(config: Config) -> Any:
    """A native model from a config (its dimensions set); ConfigError names a bad value."""
    try:
        return _glide.Model.create_from_json(json.dumps(config))
    except Error as e:
        raise ConfigError(str(e)) from None
    except (TypeError, ValueError) as e:  # values json cannot write
        raise ConfigError(f"invalid setting: {e}") from None


def check(config: Config) -> None:
    """Checks every value of `config` before the data gives its dimensions: a throwaway model of
    one feature and one label (cheap) is made from it."""
    probe = copy.deepcopy(config)
    probe["network"]["num_features"] = 1
    probe["network"]["num_labels"] = 1
    create(probe)

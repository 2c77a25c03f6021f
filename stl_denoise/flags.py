"""Command-line flags built from the config classes' fields, as Hugging Face's ``HfArgumentParser`` does.

Each setting is declared once, on its field (``config.setting``): its flag is
the field's name with dashes, its type the field's annotation (a bool is an
``--x/--no-x`` switch), its help, choices and parsing the field's metadata.
The default comes from a config instance: a preset or a recorded run.
"""

import argparse
import dataclasses
import types
import typing

from stl_denoise.config import flag


def add_setting_flags(parser, defaults, skip=()):
    """One flag per field of ``defaults``' config class (except ``skip``), defaulting to ``defaults``' values."""
    for field in dataclasses.fields(defaults):
        if field.name not in skip:
            parser.add_argument(flag(field.name), **flag_options(field, getattr(defaults, field.name)))


def flag_options(field, default):
    """``add_argument``'s keyword arguments for a config field."""
    options = {"default": default, "help": field.metadata.get("help")}
    kind = _flag_type(field)
    if kind is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif kind is not str:
        options["type"] = kind
    options.update({key: field.metadata[key] for key in ("choices", "metavar") if key in field.metadata})
    return options


def _flag_type(field):
    if "parse" in field.metadata:
        return _argument_type(field.metadata["parse"])
    kinds = typing.get_args(field.type) if isinstance(field.type, types.UnionType) else (field.type,)
    kinds = [kind for kind in kinds if kind is not type(None)]
    return kinds[0] if len(kinds) == 1 else str  # str | float (init_stddev): the text as given, read by the config


def _argument_type(parse):
    """``parse`` as an argparse type: its ValueError's message becomes argparse's one-line error."""
    def parsed(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parsed.__name__ = parse.__name__
    return parsed

"""``jepakit recipe show RECIPE [overrides]``: the resolved recipe, defaults filled in."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    recipe = sub.add_parser("recipe", help="recipe tools")
    recipe_sub = recipe.add_subparsers(dest="recipe_command", required=True)
    show = recipe_sub.add_parser("show", help="print the resolved recipe, defaults filled in")
    show.add_argument("recipe")
    show.add_argument("overrides", nargs="*")
    show.set_defaults(func=show_command)


def show_command(args: argparse.Namespace) -> int:
    from jepakit.recipe import dump_recipe, load_recipe

    print(dump_recipe(load_recipe(args.recipe, args.overrides)), end="")
    return 0

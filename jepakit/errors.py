"""Errors that mean "the user asked for something wrong".

The CLI turns every :class:`JepakitError` into a one-line message and exit
code 2, without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class JepakitError(Exception):
    """A user mistake: bad recipe, unknown component, missing file."""


class ConfigError(JepakitError):
    """A recipe, override or component parameter that does not validate."""


class RegistryError(JepakitError):
    """An unknown or duplicate component name."""


class JepakitWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints it
    as one ``jepakit: warning:`` line)."""


class PluginWarning(JepakitWarning):
    """An installed plugin is broken and was turned off; the others work."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

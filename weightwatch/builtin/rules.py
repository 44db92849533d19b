"""Built-in failure rules, registered through the same hook as a plugin's (see :mod:`weightwatch.rules.builtin`)."""

from ..hookspecs import hookimpl
from ..rules.builtin import RULES


@hookimpl
def register_rules(register):
    for rule in RULES:
        register(rule)

"""Option groups: options several commands share, declared once. `OptionGroup.add` puts a
group's options into a command's parameters and hands them to the command as one object, so
each command's signature lists only the options that are its own."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

KEYWORD = inspect.Parameter.KEYWORD_ONLY


class OptionGroup:
    """``options``: (parameter name, ``Annotated`` option, default) in the order --help shows
    them; ``make`` turns the values given (by parameter name) into the object the command
    receives."""

    def __init__(self, options: list[tuple[str, Any, Any]], make: Callable[[dict[str, Any]], Any]):
        self.options = options
        self.make = make

    def add(self, name: str) -> Callable[[Callable], Callable]:
        """A decorator: the command's parameter ``name`` becomes this group's options, in its
        place among the command's own (which --help shows in that order)."""
        return lambda command: self._added(command, name)

    def _added(self, command: Callable, name: str) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        added = [
            inspect.Parameter(option, KEYWORD, annotation=annotation, default=default)
            for option, annotation, default in self.options
        ]
        parameters = []
        for parameter in signature.parameters.values():
            parameters += added if parameter.name == name else [parameter.replace(kind=KEYWORD)]
        names = [option for option, _, _ in self.options]

        @functools.wraps(command)
        def grouped(**given: Any) -> Any:
            values = {option: given.pop(option) for option in names}
            return command(**given, **{name: self.make(values)})

        # typer reads this signature: the group's options in place of the command's ``name``
        grouped.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        grouped.__annotations__ = {p.name: p.annotation for p in parameters}
        return grouped

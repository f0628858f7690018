"""The built-in processors, by name: ``wordcount``, ``linecount``, ``csv-groupby``,
``parquet-compact``, ``copy``. Each module documents its options and value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from parceler.errors import SpecError
from parceler.processors.builtins import copy, csv_groupby, linecount, parquet_compact, wordcount


@dataclass(frozen=True, slots=True)
class Builtin:
    """One built-in processor.

    Attributes:
        name: its ``ProcessorSpec.name``.
        per: ``"file"``: ``run(file, ctx, options)`` per file; ``"group"``:
            ``run(files, ctx, options)`` once.
        parse_options: validates ``ProcessorSpec.options`` (raises SpecError).
        run: the processor.
        finish: optional post-processing of the reduced group value.
    """

    name: str
    per: Literal["file", "group"]
    parse_options: Callable[[Mapping[str, Any]], Any]
    run: Callable[..., Any]
    finish: Callable[[Any, Any], Any] | None = None


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            wordcount.NAME,
            "group",
            wordcount.parse_options,
            wordcount.count_words,
            wordcount.finish_group,
        ),
        Builtin(linecount.NAME, "file", linecount.parse_options, linecount.count_lines),
        Builtin(csv_groupby.NAME, "file", csv_groupby.parse_options, csv_groupby.group_file),
        Builtin(
            parquet_compact.NAME, "group", parquet_compact.parse_options, parquet_compact.compact
        ),
        Builtin(copy.NAME, "file", copy.parse_options, copy.copy_file),
    )
}


def get_builtin(name: str) -> Builtin:
    """The built-in called ``name``.

    Raises:
        SpecError: no such built-in; the message lists the names.
    """
    try:
        return BUILTINS[name]
    except KeyError:
        raise SpecError(
            f"there is no built-in processor {name!r}.",
            f"use one of {', '.join(sorted(BUILTINS))}, or kind 'python' / 'shell'.",
        ) from None

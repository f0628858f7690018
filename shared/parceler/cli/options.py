"""Options that several commands share (one declaration each): which source files to take."""

from __future__ import annotations

from typing import Annotated

import typer

IncludeOption = Annotated[
    list[str] | None, typer.Option(help="glob of keys/paths to keep (repeatable)")
]
ExcludeOption = Annotated[
    list[str] | None, typer.Option(help="glob of keys/paths to drop (repeatable)")
]
CountRecordsOption = Annotated[
    bool, typer.Option(metavar="", help="fill n_record (Parquet footers, line counts)")
]

"""Options that several commands share (one declaration each): which source files to take,
which deployed stack to use, how to follow and print a job."""

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
StateMachineOption = Annotated[
    str | None,
    typer.Option(help="deployed: the job state machine ARN (default $PARCELER_STATE_MACHINE_ARN)"),
]
LedgerTableOption = Annotated[
    str | None,
    typer.Option(help="deployed: the ledger table (default $PARCELER_LEDGER_TABLE)"),
]
TimeoutOption = Annotated[float | None, typer.Option(help="give up following after SECONDS")]
JsonOption = Annotated[
    bool, typer.Option("--json", metavar="", help="print one JSON object (the result document)")
]

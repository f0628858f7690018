"""Run a processor on one group: per-file or per-group calls, reduction, outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pyarrow as pa

from parceler.errors import SpecError
from parceler.processors.builtins import get_builtin
from parceler.processors.context import FileRef, GroupContext, GroupRun, file_refs
from parceler.processors.loading import load_callable, user_error
from parceler.processors.python import call_group, per_file_caller, takes_context
from parceler.processors.reducers import Reduction
from parceler.processors.shell import run_command, run_merge_command, run_shuffle_command
from parceler.shuffle import ShuffleWriter, parse_piece
from parceler.spec import JobSpec, ProcessorSpec, ReducerSpec, StageKind

_SUM = ReducerSpec(kind="builtin", name="sum")


def run_group(
    processor: ProcessorSpec,
    reducer: ReducerSpec | None,
    files: pa.Table,
    ctx: GroupContext,
    *,
    kind: StageKind = "map",
    partitions: int | None = None,
) -> GroupRun:
    """Run ``processor`` on the group's ``files`` and reduce the values with ``reducer``.

    Per-file processors (python ``per="file"``, shell, and the per-file built-ins) run on
    the files in row order; their values are folded into the reduction as they come, so a
    group's memory is one reduced value, not one value per file (except for ``reducer=None``,
    which collects the list of per-file values, and python reducers, called once on the
    list). Group processors (python ``per="group"``, ``parquet-compact``) run once; their
    value is reduced as a single value (so with ``sum`` it is the group value itself, with
    no reducer a one-item list). Before each file the group deadline is checked.

    Args:
        processor: what to run.
        reducer: how to merge values; None collects them (see ``reducers``).
        files: the group's data files (``models.DATA_FILE_SCHEMA``).
        ctx: the attempt; outputs go under ``ctx.output_prefix``. Each call records
            outputs on a fresh copy of ``ctx``, so a context may be reused.
        kind: the job's kind (docs/pipelines.md). ``map_to_n``: the processor routes pieces
            with ``ctx.emit`` (python ``fn(file, ctx)`` or ``fn(files, ctx)``; a shell
            command prints the names of the files it wrote) and the attempt's one shuffle
            object and index are written at the end. ``map_from_n``: ``files`` are one
            partition's pieces; a python processor is called once, ``fn(pieces, ctx)``,
            a shell command once with their paths on stdin.
        partitions: a ``map_to_n`` job's partition count.

    Returns:
        The group value (JSON-serialisable, or None) and the table of files written.

    Raises:
        SpecError: an unknown built-in, bad options, or ``module:function`` not loadable.
        UserCodeError: a python processor or reducer raised an exception that is not a
            parceler error (retryable: the worker retries up to ``limits.max_attempts``).
        ProcessorError: user code raised ``PermanentError``, a built-in or a command failed
            (naming the file, the exception or exit status, and a traceback or stderr
            tail), or a value is not JSON.
        DeadlineExceededError: the group ran past ``ctx.deadline``.
        RetryableError and other parceler errors from storage, unchanged.
    """
    refs = file_refs(files)
    if kind == "map_to_n":
        assert partitions is not None  # the spec validator guarantees it
        ctx = replace(ctx, shuffle=ShuffleWriter(partitions))
    elif kind == "map_from_n":
        ctx = replace(ctx, partition=_partition_of(refs))
    else:
        ctx = replace(ctx)  # a fresh output register for this run
    try:
        value = _run(processor, reducer, refs, ctx, kind)
        if ctx.shuffle is not None:
            written = ctx.shuffle.write(ctx.output_prefix)
            ctx.add_output(written.data_uri, written.data_size, None, written.data_etag)
            ctx.add_output(written.index_uri, written.index_size, written.n_pieces)
    finally:
        if ctx.shuffle is not None:
            ctx.shuffle.close()
    return GroupRun(value=value, outputs=ctx.outputs_table())


def _partition_of(refs: list[FileRef]) -> int | None:
    pieces = {piece.partition for ref in refs if (piece := parse_piece(ref.uri)) is not None}
    return pieces.pop() if len(pieces) == 1 else None


def _run(
    processor: ProcessorSpec,
    reducer: ReducerSpec | None,
    refs: list[FileRef],
    ctx: GroupContext,
    kind: StageKind,
) -> Any:
    reduction = Reduction(reducer, collect=True)
    finish: Callable[[Any], Any] | None = None
    if processor.kind == "builtin":
        assert processor.name is not None  # the spec validator guarantees it
        builtin = get_builtin(processor.name)
        options = builtin.parse_options(processor.options)
        what = f"built-in {builtin.name}"
        if builtin.per == "file":
            _each_file(
                refs, ctx, lambda f: builtin.run(f, ctx, options), what, reduction, user_code=False
            )
        else:
            reduction.add(_once(lambda: builtin.run(refs, ctx, options), what, user_code=False))
        if builtin.finish is not None:
            finish_builtin = builtin.finish
            finish = lambda value: finish_builtin(value, options)  # noqa: E731
    elif processor.kind == "python":
        assert processor.function is not None
        reference = processor.function
        function = load_callable(reference, "processor")
        what = f"processor {reference}"
        if processor.per == "file" and kind != "map_from_n":
            caller = per_file_caller(function, reference, ctx)
            _each_file(refs, ctx, caller, what, reduction, user_code=True)
        else:
            group_call = lambda: call_group(function, reference, refs, ctx)  # noqa: E731
            reduction.add(_once(group_call, what, user_code=True))
    else:
        assert processor.command is not None
        _check_shell(processor)
        command, timeout = processor.command, processor.timeout_seconds
        what = f"shell command {command!r}"
        if kind == "map_from_n":
            merge = lambda: run_merge_command(command, refs, ctx, timeout)  # noqa: E731
            reduction.add(_once(merge, what, user_code=False))
        else:
            run_one = run_shuffle_command if kind == "map_to_n" else run_command
            _each_file(
                refs, ctx, lambda f: run_one(command, f, ctx, timeout), what, reduction,
                user_code=False,
            )  # fmt: skip
    value = reduction.result()
    if finish is not None:
        value = finish(value)
    return value


def _each_file(
    refs: list[FileRef],
    ctx: GroupContext,
    call: Callable[[FileRef], Any],
    what: str,
    reduction: Reduction,
    *,
    user_code: bool,
) -> None:
    for ref in refs:
        ctx.check_deadline(ref.uri)
        try:
            value = call(ref)
        except Exception as exc:
            raise user_error(exc, what, ref.uri, user_code=user_code) from exc
        reduction.add(value)


def _once(call: Callable[[], Any], what: str, *, user_code: bool) -> Any:
    try:
        return call()
    except Exception as exc:
        raise user_error(exc, what, None, user_code=user_code) from exc


def _check_shell(processor: ProcessorSpec) -> None:
    if processor.per != "file":
        raise SpecError(
            "a 'shell' processor runs once per file; per='group' is not supported.",
            "drop 'per', or use a python group processor (kind 'python', per 'group').",
        )


def check_processor(
    processor: ProcessorSpec, reducer: ReducerSpec | None = None, kind: StageKind = "map"
) -> None:
    """Fail fast on a spec that cannot run: before any group is sent, not in every worker.

    Checks the built-in name and options, imports python processors and reducers, and
    the shell ``per``. Cheap; runs no user code beyond module imports.

    Raises:
        SpecError: naming the problem and the fix.
    """
    if processor.kind == "builtin":
        assert processor.name is not None
        get_builtin(processor.name).parse_options(processor.options)
    elif processor.kind == "python":
        assert processor.function is not None
        function = load_callable(processor.function, "processor")
        if kind == "map_to_n" and processor.per == "file" and not takes_context(function):
            raise SpecError(
                f"processor {processor.function} takes one argument, but a map_to_n job "
                "routes pieces with ctx.emit(key, data).",
                "define it as fn(file, ctx) and call ctx.emit(key, data) for each piece.",
            )
    else:
        _check_shell(processor)
    Reduction(reducer, collect=True)


def default_reducer(processor: ProcessorSpec) -> ReducerSpec | None:
    """The reducer a job without one should get: ``sum`` for built-ins and shell commands.

    Their values are counters (``{"lines": ..}``, ``{word: count}``, ``{"files": ..}``) whose
    natural merge is ``sum``; a python processor's values have no natural merge (None:
    collect). :func:`reducer_of` applies it.
    """
    return None if processor.kind == "python" else _SUM


def reducer_of(spec: JobSpec) -> ReducerSpec | None:
    """The job's reducer: the spec's, else the processor's default (workers and aggregator)."""
    return spec.reducer if spec.reducer is not None else default_reducer(spec.processor)

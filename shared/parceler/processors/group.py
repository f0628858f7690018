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
from parceler.processors.python import call_group, per_file_caller
from parceler.processors.reducers import Reduction
from parceler.processors.shell import run_command
from parceler.spec import JobSpec, ProcessorSpec, ReducerSpec

_SUM = ReducerSpec(kind="builtin", name="sum")


def run_group(
    processor: ProcessorSpec,
    reducer: ReducerSpec | None,
    files: pa.Table,
    ctx: GroupContext,
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
    ctx = replace(ctx)  # a fresh output register for this run
    refs = file_refs(files)
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
        if processor.per == "file":
            caller = per_file_caller(function, reference)
            _each_file(refs, ctx, caller, what, reduction, user_code=True)
        else:
            group_call = lambda: call_group(function, reference, refs, ctx)  # noqa: E731
            reduction.add(_once(group_call, what, user_code=True))
    else:
        assert processor.command is not None
        _check_shell(processor)
        command, timeout = processor.command, processor.timeout_seconds
        _each_file(
            refs,
            ctx,
            lambda f: run_command(command, f, ctx, timeout),
            f"shell command {command!r}",
            reduction,
            user_code=False,
        )
    value = reduction.result()
    if finish is not None:
        value = finish(value)
    return GroupRun(value=value, outputs=ctx.outputs_table())


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


def check_processor(processor: ProcessorSpec, reducer: ReducerSpec | None = None) -> None:
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
        load_callable(processor.function, "processor")
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

"""Checks a job spec passes before anything starts: source, processor, reducer and options."""

from __future__ import annotations

import csv
import difflib
import importlib
import io
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from parceler import storage
from parceler.errors import InputError, SpecError
from parceler.spec import JobSpec, PipelineSpec

# Bytes read from the first file to find a CSV header: a header longer than this is odd.
_HEADER_BYTES = 64 * 1024


def check_job(spec: JobSpec, *, import_from: Path | None = None, import_code: bool = True) -> None:
    """Raise the typed error the job would fail with, without an emulator or a stack.

    Everything here is cheap (a listing of a local source, module imports, one header
    line), so a typo costs a fraction of a second instead of a whole job start.

    Args:
        spec: the job.
        import_from: a folder put first on ``sys.path`` while importing user code (the
            local mode's workers run there, so they find modules the CLI would not).
        import_code: import python processors and reducers, and check built-in options
            (False: only the built-in names and a local source; for a deployed job, whose
            code is in the Lambda layer or the container image).

    Raises:
        SpecError: an unknown built-in (with the closest names), a module or function
            that does not import, options the processor refuses, a CSV column that is
            not in the first file's header.
        SourceError, EmptySourceError: a local source that is missing, unreadable or empty.
    """
    from parceler.processors import check_processor

    _check_builtin_names(spec)
    if not import_code:
        _first_local_file(spec)
        return
    with _on_path(import_from):
        try:
            check_processor(spec.processor, spec.reducer, spec.kind)
        except SpecError as exc:
            problem = _without_traceback(exc.problem) + _did_you_mean_function(spec)
            raise SpecError(problem, exc.fix) from None
    first = _first_local_file(spec)
    processor = spec.processor
    if first is not None and processor.kind == "builtin" and processor.name == "csv-groupby":
        _check_csv_column(spec, first)


def check_pipeline(
    pipeline: PipelineSpec, *, import_from: Path | None = None, import_code: bool = True
) -> None:
    """:func:`check_job` for every stage of ``pipeline``: the processors of all, the sources
    of those that read a source (not an earlier stage's result).

    Raises:
        SpecError, SourceError, EmptySourceError: as for :func:`check_job`, naming the stage.
    """
    inputs = pipeline.inputs()
    for stage in pipeline.order():
        reads_stage = inputs[stage.name] is not None
        source = stage.source or pipeline.source
        # A stage fed by another has no source yet: a placeholder that lists nothing.
        job = stage.job_spec("s3://placeholder/" if reads_stage else str(source), stage.name)
        try:
            check_job(job, import_from=import_from, import_code=import_code)
        except InputError as exc:
            raise type(exc)(f"stage {stage.name!r}: {exc.problem}", exc.fix) from None


def _check_builtin_names(spec: JobSpec) -> None:
    from parceler.processors.builtins import BUILTINS
    from parceler.processors.reducers import BUILTIN_REDUCERS

    processor = spec.processor
    if processor.kind == "builtin" and processor.name not in BUILTINS:
        raise SpecError(
            f"there is no built-in processor {processor.name!r}"
            f"{_suggest(processor.name, BUILTINS)}.",
            f"use one of {', '.join(sorted(BUILTINS))}, or module:function for your own code.",
        )
    reducer = spec.reducer
    if reducer is not None and reducer.kind == "builtin" and reducer.name not in BUILTIN_REDUCERS:
        raise SpecError(
            f"there is no built-in reducer {reducer.name!r}"
            f"{_suggest(reducer.name, BUILTIN_REDUCERS)}.",
            f"use one of {', '.join(sorted(BUILTIN_REDUCERS))}, or module:function.",
        )


def _suggest(name: str | None, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name or "", sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_TRACEBACK = "Traceback (most recent call last):"


def _without_traceback(problem: str) -> str:
    """The message without the import's traceback, keeping the innermost frame (the
    user's line that failed): a mistake found before the job starts is reported in one
    or two lines, not as a stack dump."""
    message, found, trace = problem.partition(_TRACEBACK)
    if not found:
        return problem
    frames = [line.strip() for line in trace.splitlines() if line.strip().startswith('File "')]
    where = f" ({frames[-1]})" if frames else ""
    return message.rstrip() + where


def _did_you_mean_function(spec: JobSpec) -> str:
    """`` (did you mean 'count'?)`` when a python processor's module imports but lacks it."""
    reference = spec.processor.function
    if spec.processor.kind != "python" or reference is None:
        return ""
    module_name, _, attribute = reference.partition(":")
    module = sys.modules.get(module_name)
    if module is None or hasattr(module, attribute):
        return ""
    names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
    return _suggest(attribute, names)


@contextmanager
def _on_path(folder: Path | None) -> Iterator[None]:
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(entry)


def _first_local_file(spec: JobSpec) -> str | None:
    """List a local source (as the planner will) and return its first file; None for S3.

    S3 sources are left to the planner: checking them needs credentials and a network.
    """
    if storage.parse_uri(spec.source).is_s3:
        return None
    from parceler.sources import load_source

    table = load_source(spec.source, include=spec.include, exclude=spec.exclude)
    uris = table.column("uri").to_pylist()
    return str(uris[0]) if uris else None


def _check_csv_column(spec: JobSpec, first: str) -> None:
    from parceler.processors.builtins.csv_groupby import parse_options

    options = parse_options(spec.processor.options)
    if not options.header:
        return
    with storage.open_input(first) as stream:
        head = stream.read(_HEADER_BYTES)
    line = head.decode("utf-8", errors="replace").splitlines()[0] if head else ""
    header = next(csv.reader(io.StringIO(line), delimiter=options.delimiter), [])
    for option, column in (("column", options.key), ("value_column", options.value)):
        if column is not None and column not in header:
            raise SpecError(
                f"csv-groupby: {option} {column!r} is not in the header of {first}"
                f"{_suggest(column, header)}; its columns are {', '.join(header) or '(none)'}.",
                f"pass --option {option}=<one of those columns>.",
            )

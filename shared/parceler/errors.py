"""The typed error family: callers branch on the type, never on message text."""

from __future__ import annotations


class ParcelerError(Exception):
    """Base of every error parceler raises on purpose.

    Every error names the problem and, where one exists, the fix. ``retryable`` tells a
    worker whether running the same step again may succeed.
    """

    retryable: bool = False

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} Fix: {fix}")

    def __reduce__(self) -> tuple[type[ParcelerError], tuple[str, str | None]]:
        # Keep problem and fix apart across processes (the planner's writer processes).
        return type(self), (self.problem, self.fix)


class PermanentError(ParcelerError):
    """Running the same step again will fail the same way."""

    retryable = False


class RetryableError(ParcelerError):
    """A transient fault (throttling, a lost race, a timeout): try again later."""

    retryable = True


class InputError(PermanentError):
    """Bad user input: a spec, a source, a listing, an option. The CLI exits with code 2."""


class SpecError(InputError):
    """A job spec or an option that does not validate."""


class SourceError(InputError):
    """A source that cannot be read or listed, or whose rows are malformed."""


class UnsupportedUriError(InputError):
    """A URI whose scheme parceler cannot read or write."""


class DuplicateUriError(InputError):
    """The same URI appears twice with different sizes or ETags."""


class EmptySourceError(InputError):
    """A source that holds no data files."""


class ManifestError(PermanentError):
    """A manifest that is malformed or fails verification against its summary."""


class ManifestNotFoundError(ManifestError):
    """A manifest summary that does not exist (not yet committed, or a wrong URI)."""


class ProcessorError(PermanentError):
    """User processor code failed on a group; recorded in the ledger with its cause."""


class OutputNameError(ProcessorError):
    """A processor named an output that would leave its attempt folder, or named nothing.

    A :class:`ProcessorError` (so permanent): the name comes from processor code, and the
    same code names the same output again on every retry.
    """


class ValueOutOfRangeError(ProcessorError):
    """A group or job value JSON cannot carry exactly: NaN, Infinity, or an int beyond int64.

    Typically a sum that overflowed. Permanent: the same inputs overflow again.
    """


class SourceChangedError(PermanentError):
    """An input file's size or ETag differs from its group manifest: it changed after planning.

    Permanent: processing it again reads the same changed file; only a new plan (a new
    manifest of the files as they are now) makes the group's inputs and result agree.
    """


class WorkerDiedError(RetryableError):
    """A worker process died (an exit or a signal) while it ran a group.

    Recorded on the group by whoever saw the death (the local mode's supervisor); retryable,
    since another attempt may not die, until the group's attempts run out.
    """


class ConflictError(RetryableError):
    """A conditional write lost a race (another attempt claimed or committed first)."""


class ObjectNotFoundError(PermanentError):
    """An object (S3 key or local file) or its bucket does not exist."""


class StorageError(PermanentError):
    """An object store refused a request for a reason retrying will not fix (access denied, ...)."""

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
    """User processor code failed on a group for good; recorded in the ledger with its cause.

    What user code raises as :class:`PermanentError` (and parceler's checks of what user
    code returns or names) becomes this: the group fails at once, no retry.
    """


class UserCodeError(RetryableError):
    """An exception escaped user code (a processor or reducer) on a group: retried.

    Any exception that is not a :class:`PermanentError` (a ``ConnectionError``, a
    ``KeyError``) may be transient, so the worker records it and retries the group, up to
    the spec's ``limits.max_attempts``; the last attempt fails the group with it.
    """


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


class ObjectNotFoundError(PermanentError):
    """An object (S3 key or local file) or its bucket does not exist."""


class StorageError(PermanentError):
    """An object store refused a request for a reason retrying will not fix (access denied, ...)."""


class QuotaExceededError(PermanentError):
    """A measured execution went over an AWS quota that moto does not enforce.

    The message names the quota, its limit, the measured value and the fix;
    ``quota_names`` holds the names of every quota exceeded (``parceler.quotas``).
    """

    quota_names: tuple[str, ...] = ()


class UnconfiguredTriggerError(InputError):
    """The starter was invoked for a bucket or key outside its trigger configuration."""


class TaskProtectionError(RetryableError):
    """The ECS agent refused or could not set task scale-in protection (logged, not fatal)."""


class MissingExtraError(InputError):
    """An optional feature needs a package that is not installed."""


class DeadlineExceededError(RetryableError):
    """The group ran past ``GroupContext.deadline`` (a Lambda about to time out).

    Retryable: the worker records the error, hands the group back and leaves its message,
    so a later delivery runs it again (from the start, as a new attempt). A group that
    always runs out of time exhausts the queue's ``maxReceiveCount`` and the dead-letter
    handler fails it with this error.
    """


class LedgerError(PermanentError):
    """The ledger table refused a request for a reason retrying will not fix."""


class JobNotFoundError(LedgerError):
    """No job item for this job id."""


class QueueError(PermanentError):
    """SQS refused a request for a reason retrying will not fix (missing queue, access denied)."""


class MessageError(PermanentError):
    """A message body that is not a parceler message."""


class EnqueueError(RetryableError):
    """Some messages of a batch could not be sent after every retry; planning can be re-run."""


class StaleReceiptError(PermanentError):
    """The receipt handle no longer names an in-flight message (deleted or received again)."""


class RecordNotDoneError(RetryableError):
    """A Lambda SQS record stays in the queue (reported as a batch item failure)."""


class ExecutionError(PermanentError):
    """Step Functions refused to start or describe the execution, or it outlived a timeout."""


class RedriveError(InputError):
    """A redrive that cannot start: the job is still running, or was never planned."""


class LocalStackError(PermanentError):
    """The warm local stack (``parceler local up``) is already up, failed to start, or died."""

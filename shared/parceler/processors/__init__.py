"""Processors and reducers: run user code, shell commands or a built-in on one group.

```python
ctx = GroupContext(job_id, group_index, attempt, output_prefix)
outcome = run_group(processor_spec, reducer_spec, files, ctx)  # GroupOutcome(value, outputs)
value = reduce_values(reducer_spec, values)                    # associative; across groups
```

``processors.python``, ``processors.shell``, ``processors.reducers`` and each module of
``processors.builtins`` document their contract and the values they return.
"""

from parceler.errors import DeadlineExceededError
from parceler.processors.builtins import BUILTINS
from parceler.processors.builtins.wordcount import top_words
from parceler.processors.context import FileRef, GroupContext, GroupOutcome
from parceler.processors.loading import load_callable
from parceler.processors.reducers import BUILTIN_REDUCERS, reduce_values
from parceler.processors.run import check_processor, default_reducer, run_group

__all__ = [
    "BUILTINS",
    "BUILTIN_REDUCERS",
    "DeadlineExceededError",
    "FileRef",
    "GroupContext",
    "GroupOutcome",
    "check_processor",
    "default_reducer",
    "load_callable",
    "reduce_values",
    "run_group",
    "top_words",
]

"""Processors and reducers: run user code, shell commands or a built-in on one group.

```python
ctx = GroupContext(job_id, group_index, attempt, output_prefix)
run = run_group(processor_spec, reducer_spec, files, ctx)  # GroupRun(value, outputs)
value = reduce_values(reducer_spec, values)                    # associative; across groups
```

``processors.python``, ``processors.shell``, ``processors.reducers`` and each module of
``processors.builtins`` document their contract and the values they return.
"""

from parceler.errors import DeadlineExceededError
from parceler.processors.builtins import BUILTINS
from parceler.processors.builtins.wordcount import top_words
from parceler.processors.context import FileRef, GroupContext, GroupRun
from parceler.processors.group import check_processor, default_reducer, reducer_of, run_group
from parceler.processors.loading import load_callable
from parceler.processors.reducers import BUILTIN_REDUCERS, reduce_values

__all__ = [
    "BUILTINS",
    "BUILTIN_REDUCERS",
    "DeadlineExceededError",
    "FileRef",
    "GroupContext",
    "GroupRun",
    "check_processor",
    "default_reducer",
    "load_callable",
    "reduce_values",
    "reducer_of",
    "run_group",
    "top_words",
]

"""Costs of moto's server that the local mode pays on every run, and does not need to.

Measured on this project's 2-core machine (``bench/results/local.md``), for moto 5.2.5
(the version :mod:`parceler.local.lambda_hook` pins):

* **Every request lists moto's package folder.** ``DomainDispatcherApplication`` asks
  ``moto.backends.list_of_moto_modules()`` (an ``os.listdir`` plus a ``stat`` per entry,
  ~190 entries) on each request to see whether the host names a service; a job makes
  thousands of requests. The list cannot change while the process runs, so it is
  computed once.
* **The first state machine imports AWS Batch and EC2.** moto's Step Functions
  interpreter imports ``moto.batch.utils`` (for one enum), and importing any module of
  ``moto.batch`` first runs the package's ``__init__``, which loads the Batch models and,
  through them, all of EC2: ~0.9 s of imports on the path of every local run, for
  services the local stack never calls. The package is registered without running its
  ``__init__``; the first attribute asked of it (moto's backend lookup, if anything ever
  calls Batch) runs it, so Batch still works.
* **Every SQS send scans the whole queue three times.** ``SendMessage`` reads one queue
  attribute (``ContentBasedDeduplication``) through ``Queue.attributes``, which builds
  every attribute, the three approximate message counts included, each a pass over all
  messages with four datetime conversions per message: sending n messages costs O(n²)
  (10,000 group messages: minutes). ``Queue.attributes`` becomes a mapping that computes
  each attribute when it is read, with the same keys and values; a message's ``visible``
  and ``delayed`` compare against ``time.time()`` instead of building datetimes.
* **Every DynamoDB transaction deep-copies the whole table.** ``TransactWriteItems`` keeps
  a backup of each table it writes, to roll back a cancelled transaction, by deep-copying
  the table: every item of every job in the ledger, per commit (10,000 groups: ~4 MB and
  ~0.1 s more per transaction as the table fills, O(n²) over a job). The backup becomes
  copies of only the items the transaction names (the only ones it can change), restored
  if it is cancelled; the table itself is not copied (moto keeps every model object it
  makes until a reset, so a copy per commit also leaked ~0.2-0.7 MB per commit).

* **Every botocore session reads the models again.** A data loader caches what it parsed,
  but each botocore session makes its own, and so does each of moto's model lookups:
  moto's server made ~12 (one per backend class's session, one per response class's
  model), each listing ~400 model folders (~15 ms) and parsing the endpoint, partition
  and service files again. Loaders are kept per search path (the files cannot change
  while the process runs), so each file is read and parsed once per process.
* **Every execution parses its definition again.** moto's ``ExecutionWorker`` runs the
  ASL parser (ANTLR, in Python) on the definition at each ``StartExecution``: ~80 ms per
  job for the job definition, a sixth of a warm one-file job (0.2-0.3 s the first time),
  and ``CreateStateMachine`` parses it once more to validate it. The parsed program is kept
  per definition text and shared by executions: its components hold no state of an
  execution (retry counts and the like live in the execution's environment, keyed by the
  component's ``heap_key``, which is drawn once, before the program is shared). The
  validation at ``CreateStateMachine`` goes through the same cache.
* **Every task makes a boto3 client.** The interpreter calls ``boto_client_for`` for each
  Lambda task and item reader: a new client each time, 10-15 ms. Clients are kept per
  region, service and endpoint (a botocore client is thread-safe).
* **Every path is parsed at every use.** Each ``InputPath``, ``ResultPath``, ``.$`` field
  and Choice variable is parsed by ``jsonpath_ng`` (which builds its PLY parser, ~1 ms)
  whenever a state evaluates it. The parsed expressions (immutable trees) are kept per
  path text.

:func:`install` is idempotent and changes nothing but those lookups.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

_DEFERRED_PACKAGES = ("moto.batch",)
EAGER_QUEUE_ATTRIBUTES: Any = None  # moto's own ``Queue.attributes``, once replaced
_TRANSACTION = threading.local()  # the TransactWriteItems being served, and its saved items


def install() -> None:
    """Cache moto's module list and defer the packages above; call before moto serves."""
    from moto import backends

    if not getattr(backends.list_of_moto_modules, "parceler_cached", False):
        listed = tuple(backends.list_of_moto_modules())

        def cached_list() -> tuple[str, ...]:
            return listed

        cached_list.parceler_cached = True  # type: ignore[attr-defined]
        backends.list_of_moto_modules = cached_list
    for name in _DEFERRED_PACKAGES:
        _defer_package_init(name)
    _one_model_loader_per_path()
    _lazy_queue_attributes()
    _item_level_transaction_backup()
    _parse_once_per_definition()


def _one_model_loader_per_path() -> None:
    import botocore.session
    from moto.core import utils

    for module in (botocore.session, utils):
        create = module.create_loader
        if not hasattr(create, "cache_info"):
            module.create_loader = functools.cache(create)  # type: ignore[attr-defined]


def _lazy_queue_attributes() -> None:
    from moto.sqs import models

    global EAGER_QUEUE_ATTRIBUTES
    if EAGER_QUEUE_ATTRIBUTES is not None:
        return
    EAGER_QUEUE_ATTRIBUTES = models.Queue.attributes
    setattr(models.Queue, "attributes", property(QueueAttributes))  # noqa: B010

    def visible(message: Any) -> bool:
        return bool(time.time() * 1000.0 > message.visible_at)

    def delayed(message: Any) -> bool:
        return bool(time.time() * 1000.0 < message.delayed_until)

    setattr(models.Message, "visible", property(visible))  # noqa: B010
    setattr(models.Message, "delayed", property(delayed))  # noqa: B010


def _item_level_transaction_backup() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "parceler_item_level", False):
        return

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        _TRANSACTION.items = transact_items
        _TRANSACTION.saved = []
        try:
            original(backend, transact_items)
        except BaseException:
            _restore(_TRANSACTION.saved)
            raise
        finally:
            _TRANSACTION.items = None
            _TRANSACTION.saved = []

    transact_write_items.parceler_item_level = True  # type: ignore[attr-defined]
    setattr(DynamoDBBackend, "transact_write_items", transact_write_items)  # noqa: B010
    setattr(Table, "__deepcopy__", table_backup)  # noqa: B010


class _ValidatingParser:
    """What moto's ``CreateStateMachine`` parses with to validate a definition: the cached
    parse, so the first execution does not parse the same text again. (moto ignores the
    result; an invalid definition raises as moto's own parser does, and is not cached.)"""

    @staticmethod
    def parse(definition: str) -> tuple[Any, None]:
        return parsed_program(definition), None


def _parse_once_per_definition() -> None:
    from moto.stepfunctions.parser import models
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    if getattr(ExecutionWorker._get_evaluation_entrypoint, "parceler_cached", False):
        return
    setattr(models, "AmazonStateLanguageParser", _ValidatingParser)  # noqa: B010

    def entrypoint(worker: Any) -> Any:
        program = parsed_program(worker._evaluation_details.state_machine_details.definition)
        _share_boto_clients()  # the parse imported every module that makes clients
        _parse_each_json_path_once()  # and every module that parses paths
        return program

    entrypoint.parceler_cached = True  # type: ignore[attr-defined]
    setattr(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)  # noqa: B010


@functools.lru_cache(maxsize=32)
def parsed_program(definition: str) -> Any:
    """moto's parsed program for ``definition``, once per text (see the module docstring)."""
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program = AmazonStateLanguageParser.parse(definition)[0]
    for component in _components(program):
        if isinstance(component, EvalComponent):
            component.heap_key  # noqa: B018 -- drawn now, not raced for by two executions
    return program


def _components(root: Any) -> Iterator[Any]:
    """Every moto ``Component`` reachable from ``root`` through attributes and containers."""
    from moto.stepfunctions.parser.asl.component.component import Component

    seen: set[int] = set()
    stack = [root]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Component):
            yield value
            stack.extend(vars(value).values())
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())


def _share_boto_clients() -> None:
    """Point every loaded interpreter module's ``boto_client_for`` at a cached one."""
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = getattr(boto_client, "parceler_original", None)
    if original is None:
        original = boto_client.boto_client_for
        boto_client.parceler_original = original  # type: ignore[attr-defined]
        boto_client.boto_client_for = shared_boto_client
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser.") and (
            getattr(module, "boto_client_for", None) is original
        ):
            module.boto_client_for = shared_boto_client  # type: ignore[attr-defined]


def _parse_each_json_path_once() -> None:
    for name in (
        "moto.stepfunctions.parser.asl.utils.json_path",
        "moto.stepfunctions.parser.asl.component.common.path.result_path",
    ):
        module = sys.modules.get(name)
        parse = getattr(module, "parse", None)
        if module is not None and parse is not None and not hasattr(parse, "cache_info"):
            module.parse = functools.lru_cache(maxsize=1024)(parse)  # type: ignore[attr-defined]


def shared_boto_client(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's ``boto_client_for``, one client per region, service and endpoint (moto's
    ignores the credentials too)."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    return _boto_client(region, service, botocore_stubber.enabled, moto_server_port())


@functools.lru_cache(maxsize=64)
def _boto_client(region: str, service: str, stubbed: bool, port: str) -> Any:
    from moto.stepfunctions.parser.asl.utils import boto_client

    return boto_client.parceler_original(region, service)  # type: ignore[attr-defined]


def table_backup(table: Any, memo: dict[int, Any]) -> Any:
    """moto's "deep copy" of a ``Table`` for a transaction's rollback: saves a copy of each
    item the transaction being served names (or its absence) and returns the table itself,
    so that moto's rollback (putting "the copy" back) changes nothing and ours restores
    the saved items. No new ``Table`` is made: moto keeps every model instance ever made
    until a reset (``instances_tracked``), so a copy per commit would never be freed.
    Outside a transaction the table is deep-copied as moto would."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    transact_items = getattr(_TRANSACTION, "items", None)
    if transact_items is None:
        backup = copy.copy(table)
        backup.items = copy.deepcopy(table.items, memo)
        return backup
    for entry in transact_items:
        op = next(iter(entry.values()))
        key = op.get("Key") or op.get("Item") or {}
        if op.get("TableName") != table.name or table.hash_key_attr not in key:
            continue
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = None
        if table.has_range_key:
            if table.range_key_attr not in key:
                continue
            range_value = DynamoType(key[table.range_key_attr])
        current = table.get_item(hash_value, range_value)
        saved = None if current is None else copy.deepcopy(current, memo)
        _TRANSACTION.saved.append((table, hash_value, range_value, saved))
    return table


def _restore(saved: list[tuple[Any, Any, Any, Any]]) -> None:
    """Put back each saved item (or remove what did not exist), last change first."""
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item


class QueueAttributes(Mapping[str, Any]):
    """moto's ``Queue.attributes`` (5.2.5), each value computed when it is read.

    The keys are the base attributes, the FIFO ones for a FIFO queue and the KMS ones when
    a key is set; a value is the queue's attribute of that name in snake case, booleans as
    ``"true"``/``"false"``, a set redrive policy as JSON.
    """

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        self._names = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        from moto.core.utils import camelcase_to_underscores

        value = getattr(self._queue, camelcase_to_underscores(name))
        if name == "RedrivePolicy" and value:
            value = json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _defer_package_init(name: str) -> None:
    """Register package ``name`` so its submodules import without its ``__init__``, which
    runs on the first attribute looked up on the package itself."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def run_init_on_first_use(attribute: str) -> Any:
        del package.__dict__["__getattr__"]  # once: the real __init__ runs next
        loader.exec_module(package)
        return getattr(package, attribute)

    package.__dict__["__getattr__"] = run_init_on_first_use
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, package)

"""Two costs of moto's server that the local mode pays on every run, and does not need to.

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

:func:`install` is idempotent and changes nothing but those two lookups.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

_DEFERRED_PACKAGES = ("moto.batch",)


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

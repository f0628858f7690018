"""The one seam to AWS: clients, error mapping, the ledger adapter and the SQS calls.

Nothing outside this package, :mod:`parceler.storage`, :mod:`parceler.execution`,
:mod:`parceler.starter`, :mod:`parceler.sources` and the local mode imports boto3; the pure
core (specs, manifests' models, the ledger's value types, messages, partitioning) imports
neither boto3 nor this package (``tests/unit/test_import_rules.py`` holds that).
Callers write ``from parceler import aws; aws.client("s3")``.
"""

from parceler.aws.clients import client, preload_models, reset_clients

__all__ = ["client", "preload_models", "reset_clients"]

"""The parceler CDK app: a stack composing one construct per capability (no runtime imports).

* ``app.py`` — entry point (``python -m infra.app``, ``cdk synth``); registers cdk-nag.
* ``stack.py`` — ``ParcelerStack``: settings from context + the ``Parceler`` construct.
* ``parceler_construct.py`` — ``Parceler``, the construct to embed in your own app.
* ``settings.py`` — ``ParcelerSettings``: every ``parceler:*`` context key and default.
* one construct per capability: ``work_bucket``, ``work_queue``, ``ledger_table``,
  ``layer`` (library layer, pip-bundled without Docker), ``functions``,
  ``container_workers`` (Fargate), ``job_state_machine`` (the ASL file), ``triggers``
  (EventBridge), ``monitoring``; ``nag.py`` holds the acknowledgement helpers.

Synth needs neither AWS credentials nor Docker. ``-c parceler:bundle=false`` skips the
layer's pip install (fast, offline, not deployable).
"""

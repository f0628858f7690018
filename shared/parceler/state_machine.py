"""The one job state machine definition (``asl/job.asl.json``) and its placeholder substitution.

CDK passes the file to ``DefinitionBody.from_file`` with ``definition_substitutions``; the
local mode calls :func:`definition` with local ARNs. Either way the same states run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from parceler.errors import SpecError

PLACEHOLDERS = frozenset(
    {"PlannerFunctionArn", "AggregatorFunctionArn", "WaiterFunctionArn", "LedgerTableName"}
)
"""The ``${Name}`` placeholders in the definition: exactly these four."""

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def definition_path() -> Path:
    """The path of ``job.asl.json`` inside the installed package (what CDK reads)."""
    return Path(str(resources.files("parceler") / "asl" / "job.asl.json"))


def template() -> str:
    """The definition text with its ``${...}`` placeholders."""
    return (resources.files("parceler") / "asl" / "job.asl.json").read_text(encoding="utf-8")


def placeholders(text: str | None = None) -> frozenset[str]:
    """The placeholder names used in ``text`` (default: the definition)."""
    return frozenset(_PLACEHOLDER.findall(template() if text is None else text))


def definition(substitutions: Mapping[str, str]) -> str:
    """The definition with every placeholder replaced, as CDK's ``definition_substitutions`` do.

    Args:
        substitutions: placeholder name (without ``${}``) → value, e.g.
            ``{"PlannerFunctionArn": "arn:aws:lambda:...", ...}``.

    Returns:
        The ASL JSON text, validated to parse.

    Raises:
        SpecError: a placeholder has no value, or a name given is not a placeholder.
    """
    text = template()
    wanted = placeholders(text)
    missing = sorted(wanted - substitutions.keys())
    unknown = sorted(substitutions.keys() - wanted)
    if missing or unknown:
        raise SpecError(
            f"state machine substitutions: missing {missing}, unknown {unknown}.",
            f"give exactly {sorted(wanted)}.",
        )

    def replace(match: re.Match[str]) -> str:
        # Values land inside JSON strings: escape them as JSON would.
        return json.dumps(substitutions[match.group(1)])[1:-1]

    result = _PLACEHOLDER.sub(replace, text)
    check_runs_alike(json.loads(result))
    return result


def check_runs_alike(document: Mapping[str, Any]) -> None:
    """Refuse a definition that moto (the local mode and the tests) would run differently
    from AWS, so that a green local run means the same on AWS.

    Today one construct: a ``Catch`` whose ``Next`` is its own state. AWS re-enters the
    state; moto ignores the catcher and takes the state's ``Next`` instead (moto 5.2.5,
    ``State._set_next``), so a re-check loop silently became "continue".

    Raises:
        SpecError: naming the state and the fix (route the catcher through a Pass state).
    """
    for name, state in _states(document):
        for catcher in state.get("Catch", []):
            if catcher.get("Next") == name:
                raise SpecError(
                    f"state machine: a Catch of state {name!r} names {name!r} itself; moto "
                    "ignores such a catcher and continues with the state's Next, unlike AWS.",
                    f"send the catcher to a Pass state whose Next is {name!r}.",
                )


def _states(document: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in document.get("States", {}).items():
        yield name, state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _states(state[key])
        for branch in state.get("Branches", []):
            yield from _states(branch)

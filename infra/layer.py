"""The ``parceler`` library as a Lambda layer, staged by pip on this machine (never Docker).

Bundling (context ``parceler:bundle``, default ``true`` in ``cdk.json``) runs, in the
synthesizing Python process::

    python -m pip install --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
        --only-binary=:all: --python-version 3.12 --implementation cp \
        --target <asset>/python <runtime requirements from pyproject.toml>

and copies ``shared/parceler`` next to them, so the layer is ``/opt/python/...`` on Lambda.
The wheels are the Lambda platform's (Linux, CPython 3.12, x86_64), not this machine's.
It needs pip and a package index, not Docker; CDK re-bundles only when ``shared/`` or the
requirement list changes (both are part of the asset hash).

``parceler:bundle=false`` stages ``shared/`` as is, without dependencies: synth and the
infra tests stay fast and offline, but that layer is not deployable (nothing is on
``/opt/python``). Deploy with bundling on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

#: One architecture for functions, layer wheels and the Fargate image.
LAMBDA_ARCHITECTURE = lambda_.Architecture.X86_64
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12
PIP_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
PIP_PYTHON_VERSION = "3.12"

#: Project dependencies the Lambda runtime does not need from the layer. boto3/botocore
#: ship with the Python 3.12 runtime; moto (the local emulator), typer and rich (the CLI)
#: are never imported by a handler. Leaving them out keeps the layer plus a function well
#: under Lambda's 250 MB unzipped limit (pyarrow alone is ~165 MB before pruning).
LAYER_EXCLUDED_DEPENDENCIES = frozenset({"boto3", "botocore", "moto", "typer", "rich"})

#: Files no handler imports, removed from the layer after pip (paths relative to
#: ``python/``). pyarrow's Flight RPC is its biggest optional part (~35 MB); no other
#: pyarrow library links it (checked with ``readelf -d`` on pyarrow 26). Headers, C++
#: sources and test suites are never imported. Measured with pyarrow 26.0.1: 231 MB
#: unzipped before pruning, ~180 MB after, leaving ~70 MB of Lambda's 250 MB for
#: function code and processor layers.
LAYER_PRUNE_GLOBS = (
    "bin",
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/tests",
    "pyarrow/_pyarrow_cpp_tests*",
    "pyarrow/flight.py",
    "pyarrow/_flight*",
    "pyarrow/libarrow_flight*",
    "pyarrow/libarrow_python_flight*",
    "numpy/**/tests",
    "**/__pycache__",
)

_EXCLUDE_FROM_SOURCE = ["*.egg-info", "**/__pycache__", "*.pyc"]
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def runtime_requirements(pyproject: Path) -> list[str]:
    """The ``[project].dependencies`` of ``pyproject`` minus the excluded ones, in order.

    Raises:
        ValueError: ``pyproject`` has no ``[project].dependencies`` list.
    """
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    deps = data.get("project", {}).get("dependencies")
    if not isinstance(deps, list):
        raise ValueError(f"{pyproject}: no [project].dependencies list to build the layer from")
    kept: list[str] = []
    for requirement in deps:
        match = _REQUIREMENT_NAME.match(str(requirement))
        name = match.group(1) if match else str(requirement)
        if _normalise(name) not in LAYER_EXCLUDED_DEPENDENCIES:
            kept.append(str(requirement))
    return kept


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Builds the layer folder with pip for the Lambda platform, in this process."""

    def __init__(self, package_dir: Path, requirements: list[str]) -> None:
        self._package_dir = package_dir
        self._requirements = requirements

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Install the requirements and copy the package under ``output_dir/python``.

        Returns ``True`` (bundled) or raises: returning ``False`` would make CDK fall back
        to Docker, which this project never needs.

        Raises:
            RuntimeError: pip failed; its output is in the message.
        """
        target = Path(output_dir) / "python"
        target.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
        for platform in PIP_PLATFORMS:
            command += ["--platform", platform]
        command += [
            "--only-binary=:all:",
            "--python-version",
            PIP_PYTHON_VERSION,
            "--implementation",
            "cp",
            "--target",
            str(target),
            *self._requirements,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                "building the parceler Lambda layer with pip failed "
                f"(set context parceler:bundle=false to synth without it):\n{result.stderr}"
            )
        prune(target)
        shutil.copytree(
            self._package_dir,
            target / self._package_dir.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        return True


def prune(site_dir: Path) -> list[Path]:
    """Delete what ``LAYER_PRUNE_GLOBS`` matches under ``site_dir``; return what went."""
    removed: list[Path] = []
    for pattern in LAYER_PRUNE_GLOBS:
        for path in sorted(site_dir.glob(pattern), reverse=True):
            if not path.exists():
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


class LibraryLayer(Construct):
    """The ``parceler`` package (and, bundled, its runtime dependencies) as a layer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared_dir: Path,
        pyproject: Path,
        bundle: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        if bundle:
            requirements = runtime_requirements(pyproject)
            code = lambda_.Code.from_asset(
                str(shared_dir),
                exclude=_EXCLUDE_FROM_SOURCE,
                bundling=BundlingOptions(
                    # Never pulled: the local bundler always succeeds or raises.
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
                    local=PipLayerBundler(shared_dir / "parceler", requirements),
                    # Part of the asset hash: a changed requirement list re-bundles.
                    environment={"PARCELER_LAYER_REQUIREMENTS": " ".join(requirements)},
                ),
            )
        else:
            code = lambda_.Code.from_asset(str(shared_dir), exclude=_EXCLUDE_FROM_SOURCE)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
            description="parceler library and its runtime dependencies",
        )


@jsii.implements(ILocalBundling)
class CopyToPythonBundler:
    """Copies modules and packages under ``python/`` (a layer's import root), no pip."""

    def __init__(self, sources: list[Path]) -> None:
        self._sources = sources

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Copy every source file or folder to ``output_dir/python/<name>``."""
        target = Path(output_dir) / "python"
        target.mkdir(parents=True, exist_ok=True)
        for source in self._sources:
            if source.is_dir():
                shutil.copytree(
                    source,
                    target / source.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    dirs_exist_ok=True,
                )
            else:
                shutil.copy2(source, target / source.name)
        return True


class ProcessorLayer(Construct):
    """Your processor/reducer modules as a layer (``module:function`` resolves there).

    ``sources`` are Python modules (``.py`` files) or packages (folders), all in one
    folder; they are copied as they are, so their third-party needs must already be in
    the parceler layer or in another layer of yours.

    Raises:
        ValueError: no sources, a missing source, or sources in different folders.
    """

    def __init__(self, scope: Construct, construct_id: str, *, sources: list[Path]) -> None:
        super().__init__(scope, construct_id)
        missing = [str(path) for path in sources if not path.exists()]
        parents = {path.resolve().parent for path in sources}
        if not sources or missing or len(parents) != 1:
            raise ValueError(
                f"ProcessorLayer needs existing sources in one folder; missing={missing}, "
                f"folders={sorted(map(str, parents))}"
            )
        names = sorted(path.name for path in sources)
        code = lambda_.Code.from_asset(
            str(parents.pop()),
            # Only the named sources count toward the asset hash.
            exclude=["*", *(f"!{name}" for name in names), *(f"!{name}/**" for name in names)],
            bundling=BundlingOptions(
                image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
                local=CopyToPythonBundler([path.resolve() for path in sources]),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
            description="parceler processors: " + ", ".join(names),
        )

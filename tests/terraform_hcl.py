"""Rendered Terraform parsed with python-hcl2 the same way in every test module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2

OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def load(path: Path) -> dict[str, Any]:
    """One .tf, .tfvars or .hcl file as python-hcl2's dict (string quotes stripped, blocks as lists)."""
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=OPTIONS)


# Files of the project a root module (infra/terraform/<cloud>) reads, relative to the project: the contract names the
# feature store's online table (aws locals.tf).
PROJECT_FILES_READ = ("contract.yaml",)


def module_copy(module: Path, destination: Path) -> Path:
    """Copy the root module `module` (<project>/infra/terraform/<cloud>) under `destination` with the project files
    it reads, at the same paths relative to it; return the copy's module directory."""
    project = module.parents[2]
    copy = destination / module.relative_to(project)
    shutil.copytree(module, copy)
    for name in PROJECT_FILES_READ:
        if (project / name).is_file():
            shutil.copy(project / name, destination / name)
    return copy


class RootModule:
    """The parsed .tf files of one rendered root module."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, dict[str, Any]] = {path.name: load(path) for path in sorted(directory.glob("*.tf"))}

    def blocks(self, kind: str) -> Iterator[dict[str, Any]]:
        for parsed in self.files.values():
            yield from parsed.get(kind, [])

    def resources(self, resource_type: str | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(type, name, body) of every resource, or of one type."""
        for block in self.blocks("resource"):
            for rtype, by_name in block.items():
                if resource_type in (None, rtype):
                    for name, body in by_name.items():
                        yield rtype, name, body

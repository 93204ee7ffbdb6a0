"""Print the release notes of one version: its section of CHANGELOG.md.

    python hooks/release_notes.py v0.3.0 [--changelog CHANGELOG.md] [--output notes.md]

The release workflow (.github/workflows/release.yml) runs it on every `vX.Y.Z` tag: it fails, and so stops the
release before anything is published, when the changelog has no section for the tag's version, when that
section is still dated `Unreleased`, or when it is empty. Standard library only, so it runs on a bare runner.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TAG = re.compile(r"^v?(?P<version>\d+\.\d+\.\d+)$")
HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>.+?))?\s*$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Link reference definitions at the end of the file: `[0.3.0]: https://github.com/.../compare/v0.2.0...v0.3.0`.
LINK = re.compile(r"^\[(?P<label>[^\]]+)\]:\s*(?P<url>\S+)\s*$")


class ReleaseNotesError(ValueError):
    """The changelog cannot give the notes of this version; the message says what to fix."""


def release_notes(changelog: str, tag: str) -> str:
    """The body of the version's section (without its heading), followed by its compare link when there is one."""
    if not (match := TAG.match(tag.strip())):
        raise ReleaseNotesError(f"{tag!r} is not a release tag: releases are tagged vX.Y.Z (docs/releasing.md)")
    version = match["version"]
    lines = changelog.splitlines()
    links = {m["label"]: m["url"] for line in lines if (m := LINK.match(line))}
    start = date = None
    for number, line in enumerate(lines):
        if (heading := HEADING.match(line)) and heading["version"] == version:
            start, date = number + 1, heading["date"]
            break
    if start is None:
        raise ReleaseNotesError(
            f"CHANGELOG.md has no section for {version}: add `## [{version}] - YYYY-MM-DD` with the release's "
            "entries before tagging (docs/releasing.md, step 2)"
        )
    if date is None or not DATE.match(date):
        raise ReleaseNotesError(
            f"the section of {version} in CHANGELOG.md is dated {date or 'nothing'!r}, not YYYY-MM-DD: "
            "set the release date before tagging"
        )
    end = next((n for n in range(start, len(lines)) if lines[n].startswith("## ")), len(lines))
    body = [line for line in lines[start:end] if not LINK.match(line)]
    text = "\n".join(body).strip()
    if not text:
        raise ReleaseNotesError(f"the section of {version} in CHANGELOG.md is empty: list what the release changes")
    if version in links:
        text += f"\n\n**Compare**: {links[version]}"
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag", help="the release tag, vX.Y.Z (or the bare version X.Y.Z)")
    parser.add_argument("--changelog", type=Path, default=Path(__file__).resolve().parent.parent / "CHANGELOG.md")
    parser.add_argument("--output", type=Path, help="write the notes here instead of standard output")
    args = parser.parse_args(argv)
    try:
        notes = release_notes(args.changelog.read_text(encoding="utf-8"), args.tag)
    except ReleaseNotesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(notes, encoding="utf-8")
    else:
        sys.stdout.write(notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

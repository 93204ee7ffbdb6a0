"""Migration to 0.2.0: the template-update guide moved from the project root into docs/.

Run by copier (`_migrations` in copier.yml) after `copier update` crosses 0.2.0, from the project root:
    python hooks/migrations/v0_2_0.py <template root> <release the project was on>
"""

from __future__ import annotations

import sys

from moved_files import run_moves

VERSION = "0.2.0"
# old path -> new path, both relative to the generated project's root
MOVES = {"TEMPLATE_UPDATES.md": "docs/template-updates.md"}

if __name__ == "__main__":
    sys.exit(run_moves(MOVES, sys.argv[1:]))

"""The documentation site builds in strict mode, and README's links into it work on GitHub too.

`mkdocs build --strict` fails on a broken link or anchor, a page missing from the nav, and a
docstring that documents a parameter the signature does not have. Its programs and commands are
run by test_readme.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import trackio_integrations
from tests.harness import BIN, REPO

IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def test_the_site_builds_in_strict_mode_with_every_public_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    api = (site / "api.html").read_text()
    missing = [
        n for n in trackio_integrations.__all__ if f'id="trackio_integrations.{n}"' not in api
    ]
    assert not missing, f"add `::: trackio_integrations.<name>` to docs/api.md for {missing}"


def test_readme_links_and_images_resolve_from_the_repository_root() -> None:
    readme = (REPO / "README.md").read_text()
    targets = [t for t in IMAGE.findall(readme) + LINK.findall(readme) if "://" not in t]
    assert any(t.startswith("docs/") for t in targets)
    broken = [t for t in targets if not (REPO / t.split("#")[0]).exists()]
    assert not broken, broken


def test_every_picture_in_the_docs_is_made_by_make_screenshot() -> None:
    """Screenshots come from the demo's data through scripts/screenshot.py, never by hand."""
    script = (REPO / "scripts" / "screenshot.py").read_text()
    pages = [REPO / "README.md", *(REPO / "docs").glob("*.md")]
    pictures = {Path(t).name for page in pages for t in IMAGE.findall(page.read_text())}
    assert pictures
    by_hand = sorted(name for name in pictures if name not in script)
    assert not by_hand, f"not written by scripts/screenshot.py: {by_hand}"

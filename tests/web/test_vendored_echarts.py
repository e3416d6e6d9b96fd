"""Apache ECharts is vendored at build time (scripts/vendor-echarts, run by the README's run and test
commands): the file is there with the sha256 the script pins, its licence beside it, and the site
serves them and the charts' renderer from /static/ (no CDN)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "vendor-echarts"
VENDORED = REPO / "bridge" / "web" / "static" / "vendor" / "echarts"


def pinned_sha256() -> str:
    return re.search(r'^ECHARTS_MIN_SHA256="([0-9a-f]{64})"$', SCRIPT.read_text(encoding="utf-8"), re.M).group(1)


def test_the_vendored_file_is_the_pinned_one():
    library = VENDORED / "echarts.min.js"
    assert library.is_file(), "run scripts/vendor-echarts (scripts/test and scripts/run do)"
    assert hashlib.sha256(library.read_bytes()).hexdigest() == pinned_sha256()
    assert "Apache License" in (VENDORED / "LICENSE").read_text(encoding="utf-8")
    assert "Apache ECharts" in (VENDORED / "NOTICE").read_text(encoding="utf-8")


def test_the_site_serves_the_library_its_licence_and_the_renderer(client):
    library = client.get("/static/vendor/echarts/echarts.min.js")
    assert library.status_code == 200 and "javascript" in library.headers["content-type"]
    assert hashlib.sha256(library.content).hexdigest() == pinned_sha256()
    for name in ("LICENSE", "NOTICE"):
        assert client.get(f"/static/vendor/echarts/{name}").status_code == 200
    renderer = client.get("/static/charts.js")
    assert renderer.status_code == 200 and "/static/vendor/echarts/echarts.min.js" in renderer.text
    assert not re.search(r"https?://", renderer.text)  # nothing from outside the site

"""The tests, benchmarks, scripts and CI read nothing outside the repository, so a plain clone's
test command passes: no path climbs above the repository root, and nothing names the
``shared`` folder that sits beside the checkout on the development machine (its reference
files are copied into tests/contracts/)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "bench", "scripts", ".ci")
NOT_CODE = (REPO / "tests" / "contracts",)  # the copied descriptions themselves

# Path(__file__).parents[N] / Path(__file__).parent.parent... / dirname "$0"/../..
PARENTS_INDEX = re.compile(r"parents\[(\d+)\]")
PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\)|\.absolute\(\))?((?:\.parent\b)+)")
SHELL_CLIMB = re.compile(r"dirname\s+\"?\$(?:0|\{BASH_SOURCE\[0\]\})\"?\s*\)\"?((?:/\.\.)+)")
OUTSIDE_FOLDER = re.compile(r"""(?:\.\./|/)shared\b|["']shared["']""")


def escapes(relative: Path, text: str) -> list[str]:
    """What in ``text`` (the file at ``relative`` in the repository) reaches outside it."""
    folders = len(relative.parts) - 1  # parents[folders] of the file is the repository root
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{relative}:{number}: {line.strip()}"
        if any(int(n) > folders for n in PARENTS_INDEX.findall(line)):
            found.append(where)
        elif any(chain.count(".parent") > folders + 1 for chain in PARENT_CHAIN.findall(line)):
            found.append(where)
        elif any(climb.count("..") > folders for climb in SHELL_CLIMB.findall(line)):
            found.append(where)
        elif OUTSIDE_FOLDER.search(line):
            found.append(where)
    return found


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*")):
            if (path.is_file() and path != Path(__file__).resolve() and "__pycache__" not in path.parts
                    and not any(path.is_relative_to(data) for data in NOT_CODE)):
                files.append(path)
    return files


def test_no_test_bench_or_script_path_reaches_outside_the_repository():
    found = []
    for path in scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (a sound file, a SIPp pcap): no paths in it
        found += escapes(path.relative_to(REPO), text)
    assert found == [], "paths that leave the repository (copy what they need into it):\n" + "\n".join(found)


@pytest.mark.parametrize("relative, line", [
    ("tests/forum/discourse_server.py",
     'SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "discourse-openapi.yml"'),
    ("tests/forum/discourse_server.py", 'SPEC = Path(__file__).resolve().parents[3] / "reference" / "x.yml"'),
    ("tests/x.py", "ROOT = Path(__file__).resolve().parent.parent.parent"),
    ("tests/x.py", 'SPEC = Path("/work/shared/reference/discourse-openapi.yml")'),
    ("tests/x.py", 'SPEC = "../shared/reference/twilio_api_v2010.json"'),
    ("scripts/lib/setup.sh", 'OUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"'),
])
def test_the_scan_catches_a_path_out_of_the_repository(relative, line):
    assert escapes(Path(relative), line) != []


@pytest.mark.parametrize("relative, line", [
    ("tests/forum/discourse_server.py", "ROOT = Path(__file__).resolve().parents[2]"),
    ("bench/forum.py", "ROOT = Path(__file__).resolve().parent.parent"),
    ("scripts/lib/setup.sh", 'REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"'),
    ("tests/desk/test_cases_pages.py", 'assert recording_path(tmp_path, "../a.wav") is None'),
    ("tests/desk/test_callbacks.py", '"""The shared "to call back / to file" list"""'),
])
def test_the_scan_lets_paths_inside_the_repository_pass(relative, line):
    assert escapes(Path(relative), line) == []

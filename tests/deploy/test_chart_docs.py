"""values.schema.json and the README parameter tables are generated from values.yaml, and stay so.

``make chart-schema`` (scripts/chart_schema.py) writes both from the ``@param`` / ``@schema``
comments. These tests run the same command into a temporary folder and compare, and show that a
value added with its comments is documented and checked after one regeneration.
"""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from helmchart import CHART, CHART_SCHEMA_SCRIPT, Result, helm_template

pytestmark = pytest.mark.deploy
GENERATED = ("values.schema.json", "README.md")
NEW_VALUE = """\
  ## @param worker.prefetch Tasks a worker takes from the queue at once
  ## @schema minimum: 1, maximum: 64
  prefetch: 4
"""


def generate(chart: Path, out: Path, readme_generator: Path) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/chart_schema.py`` as ``make chart-schema`` does, writing into ``out``."""
    args = [sys.executable, str(CHART_SCHEMA_SCRIPT), "--chart", str(chart), "--out", str(out)]
    args += ["--readme-generator", str(readme_generator)]
    return subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)


def stale(chart: Path, fresh: Path) -> dict[str, str]:
    """{file name: diff} for each generated file of ``chart`` that differs from ``fresh``."""
    found = {}
    for name in GENERATED:
        old, new = (chart / name).read_text(), (fresh / name).read_text()
        if old != new:
            lines = difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), name, "generated"
            )
            found[name] = "".join(lines)
    return found


def render(helm: str, chart: Path, *sets: str) -> Result:
    """``helm template`` without helmchart's cache: these tests change the chart between runs."""
    result: Result = helm_template.__wrapped__(helm, (), sets, chart)
    return result


def with_value(chart: Path, text: str) -> None:
    """Add ``text`` (lines of values.yaml) at the top of the ``worker:`` mapping."""
    values = chart / "values.yaml"
    before = values.read_text()
    assert "\nworker:\n" in before
    values.write_text(before.replace("\nworker:\n", "\nworker:\n" + text, 1))


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    chart = tmp_path / "voxmill"
    shutil.copytree(CHART, chart)
    return chart


def test_committed_schema_and_readme_are_generated_from_values(
    readme_generator: Path, tmp_path: Path
) -> None:
    done = generate(CHART, tmp_path, readme_generator)
    assert done.returncode == 0, done.stdout + done.stderr
    for name, diff in stale(CHART, tmp_path).items():
        pytest.fail(
            f"helm/voxmill/{name} is stale: run 'make chart-schema' and commit it\n{diff[:4000]}"
        )
    jsonschema.Draft7Validator.check_schema(json.loads((CHART / GENERATED[0]).read_text()))


def test_a_value_added_with_its_comments_is_documented_and_checked(
    helm: str, readme_generator: Path, chart_copy: Path, tmp_path: Path
) -> None:
    with_value(chart_copy, NEW_VALUE)
    # Until regenerated, the committed files are stale (so the test above would fail)...
    done = generate(chart_copy, tmp_path / "fresh", readme_generator)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(stale(chart_copy, tmp_path / "fresh")) == set(GENERATED)
    # ... and the chart refuses the new value as unknown.
    assert render(helm, chart_copy, "worker.prefetch=8").returncode != 0

    done = generate(chart_copy, chart_copy, readme_generator)
    assert done.returncode == 0, done.stdout + done.stderr

    readme = (chart_copy / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `worker.prefetch`"))
    assert "Tasks a worker takes from the queue at once" in row
    assert "`4`" in row
    assert render(helm, chart_copy, "worker.prefetch=8").returncode == 0
    for bad in ("worker.prefetch=0", "worker.prefetch=65", "worker.prefetch=many"):
        result = render(helm, chart_copy, bad)
        assert result.returncode != 0, bad
        assert "worker.prefetch" in result.stderr
    typo = render(helm, chart_copy, "worker.prefech=8")
    assert typo.returncode != 0
    assert "prefech" in typo.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  prefetch: 4\n", "worker.prefetch: no '## @param worker.prefetch DESCRIPTION' comment"),
        (
            "  ## @param worker.prefetch Tasks per worker\n  ## @param worker.gone Not here\n"
            "  prefetch: 4\n",
            "@param comments for values that do not exist: worker.gone",
        ),
        ("  ## @schema minimum: 1\n  prefetch: 4\n", "'@schema' must directly follow an '@param'"),
        (
            "  ## @param worker.prefetch Tasks per worker\n  ## @schema minimum 1\n  prefetch: 4\n",
            "expected 'KEYWORD: VALUE, ...'",
        ),
        (
            "  ## @param worker.prefetch Tasks per worker\n"
            "  ## @schema $ref: '#/definitions/nothing'\n  prefetch: 4\n",
            "unknown $ref '#/definitions/nothing'",
        ),
        (
            "  ## @param worker.prefetch [integer] Tasks per worker\n  prefetch: 4\n",
            "unknown modifier 'integer'",
        ),
        (
            "  ## @param worker.prefetch Tasks per worker\n  ## @schema minimun: 1\n"
            "  prefetch: 4\n",
            "minimun: not JSON Schema (draft-07) keywords",
        ),
        (
            "  ## @param worker.prefetch Tasks per worker\n  prefetch:\n",
            "worker.prefetch: a null default says nothing of the type",
        ),
        (
            "  ## @param worker.prefetch Tasks per worker\n  ## @schema minimum: one\n"
            "  prefetch: 4\n",
            "worker.prefetch.minimum: invalid @schema: 'one' is not of type 'number'",
        ),
    ],
    ids=[
        "undocumented",
        "orphan-param",
        "schema-alone",
        "not-yaml",
        "unknown-ref",
        "modifier",
        "misspelt-keyword",
        "null-default",
        "bad-keyword-value",
    ],
)
def test_bad_comments_fail_generation_and_change_nothing(
    readme_generator: Path, chart_copy: Path, text: str, message: str
) -> None:
    with_value(chart_copy, text)
    before = {name: (chart_copy / name).read_text() for name in GENERATED}
    done = generate(chart_copy, chart_copy, readme_generator)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert {name: (chart_copy / name).read_text() for name in GENERATED} == before

"""Regenerate the Helm chart's values.schema.json and README parameter tables from values.yaml.

values.yaml is the one source: every value carries a Bitnami ``## @param PATH [MODIFIERS]
DESCRIPTION`` comment, and may carry ``## @schema KEYWORD: VALUE`` lines right below it with
JSON Schema keywords (YAML syntax) for what its default does not say::

    ## @param config.logLevel Log level of the Voxmill processes
    ## @schema enum: [DEBUG, INFO, WARNING, ERROR]
    logLevel: INFO

- The type comes from the default (``5`` is an integer, ``""`` a string); ``type:`` overrides it.
- A mapping whose keys have their own ``@param`` becomes a closed object (unknown keys, such as a
  typo, are refused); a mapping documented as a whole (``[object]``) is free-form unless its
  ``@schema`` lines say more.
- Several ``@schema`` lines add up (nested mappings such as ``properties`` merge).
- ``## @schemaDef NAME COMMENT`` followed by ``@schema`` lines declares a schema that values
  share with ``$ref: '#/definitions/NAME'``; it is copied into each (the written schema has no
  ``$ref``, so no validator's handling of keywords beside one matters).

Two tools, because none of the maintained generators fits alone (compared in
helm/voxmill/README.md, "Changing values"): Bitnami's readme-generator-for-helm writes the README
tables and checks that every value has an ``@param`` (scripts/install-chart-tools.sh pins it),
but the schema it writes holds only a type and a default per value: no enums, patterns, minimums
or closed objects, numbers typed ``number``, ``[object]`` blocks left out and arrays of objects
typed as strings. The generators that read constraints from comments (dadav/helm-schema,
losisin/helm-values-schema-json) are Go binaries, not published to npm or PyPI, the only registries
our machines and CI reach. So the schema is written here, from the same comments.

Usage::

    python scripts/chart_schema.py            # rewrite both in helm/voxmill (make chart-schema)
    python scripts/chart_schema.py --out DIR  # write both into DIR instead (the staleness test)
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "voxmill"
README_GENERATOR = ROOT / ".tools" / "chart-tools" / "node_modules" / ".bin" / "readme-generator"
SCHEMA_FILE = "values.schema.json"
README_FILE = "README.md"
TITLE = "Voxmill chart values"

# The pattern readme-generator-for-helm matches (lib/parser.js): both tools read a comment alike.
PARAM = re.compile(r"^\s*##\s*@param\s*(?P<path>\S+)\s*(?:\[(?P<mods>.*?)\])?\s*(?P<desc>.*)$")
SCHEMA = re.compile(r"^\s*##\s*@schema\s+(?P<body>.*)$")
SCHEMA_DEF = re.compile(r"^\s*##\s*@schemaDef\s+(?P<name>[A-Za-z0-9_-]+)\b.*$")
DEFINITION_REF = re.compile(r"^#/definitions/(?P<name>[A-Za-z0-9_-]+)$")
TYPE_MODIFIERS = {"object": "object", "array": "array", "string": "string"}
# A misspelt keyword ("minimun") would be ignored by every validator: refuse the ones draft-07
# does not define (its meta-schema lists them all).
KEYWORDS = frozenset(Draft7Validator.META_SCHEMA["properties"])


class ChartSchemaError(Exception):
    """values.yaml cannot be turned into a schema; the message says where and why."""


@dataclass
class Param:
    """One ``@param`` comment and the ``@schema`` lines below it."""

    path: str
    description: str
    line: int
    modifiers: list[str] = field(default_factory=list)
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass
class Annotations:
    """Everything the comments of values.yaml say: the parameters and the shared definitions."""

    params: dict[str, Param]
    definitions: dict[str, dict[str, Any]]


def _yaml_mapping(body: str, line: int) -> dict[str, Any]:
    """``KEY: VALUE, KEY: VALUE`` (the inside of a YAML flow mapping, braces optional)."""
    flow = body if body.lstrip().startswith("{") else "{" + body + "}"
    try:
        loaded = yaml.safe_load(flow)
    except yaml.YAMLError as e:
        raise ChartSchemaError(f"values.yaml:{line}: not YAML: {body!r} ({e})") from e
    if not isinstance(loaded, dict) or None in loaded.values():
        raise ChartSchemaError(f"values.yaml:{line}: expected 'KEYWORD: VALUE, ...', got {body!r}")
    return loaded


def _keywords(body: str, line: int) -> dict[str, Any]:
    """An ``@schema`` line: JSON Schema keywords and their values."""
    keywords = _yaml_mapping(body, line)
    if unknown := sorted(set(keywords) - KEYWORDS):
        raise ChartSchemaError(
            f"values.yaml:{line}: {', '.join(unknown)}: not JSON Schema (draft-07) keywords"
        )
    return keywords


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Add ``more`` to ``into``; mappings under the same keyword merge, anything else replaces."""
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def parse_annotations(text: str) -> Annotations:
    """Read the ``@param``, ``@schema`` and ``@schemaDef`` comments of a values file.

    Args:
        text: The values.yaml text.

    Returns:
        The parameters by dotted path, and the definitions by name.

    Raises:
        ChartSchemaError: A path or definition documented twice, a ``@schema`` line not right
            below an ``@param`` or ``@schemaDef`` (or another ``@schema``), an unknown modifier
            or keyword, or a line that is not YAML.
    """
    params: dict[str, Param] = {}
    definitions: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None  # what the next @schema line adds to
    for number, line in enumerate(text.splitlines(), start=1):
        if m := SCHEMA_DEF.match(line):
            if m["name"] in definitions:
                raise ChartSchemaError(f"values.yaml:{number}: @schemaDef {m['name']} twice")
            current = definitions[m["name"]] = {}
        elif m := SCHEMA.match(line):
            if current is None:
                raise ChartSchemaError(
                    f"values.yaml:{number}: '@schema' must directly follow an '@param' "
                    "(or '@schemaDef') line"
                )
            _merge(current, _keywords(m["body"], number))
        elif m := PARAM.match(line):
            path = m["path"]
            if path in params:
                raise ChartSchemaError(
                    f"values.yaml:{number}: {path} is documented twice "
                    f"(first on line {params[path].line})"
                )
            modifiers = [x.strip() for x in (m["mods"] or "").split(",") if x.strip()]
            for modifier in modifiers:
                if modifier not in (*TYPE_MODIFIERS, "nullable") and not modifier.startswith(
                    "default:"
                ):
                    raise ChartSchemaError(f"values.yaml:{number}: unknown modifier {modifier!r}")
            params[path] = Param(path, m["desc"].strip(), number, modifiers)
            current = params[path].schema
        else:
            current = None
    return Annotations(params, definitions)


def json_type(value: Any) -> str:
    """The JSON Schema type of a YAML value (``bool`` before ``int``: it is one in Python)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    for kind, name in ((float, "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


def _resolve(schema: Any, definitions: dict[str, dict[str, Any]], where: str) -> Any:
    """Copy the definitions into every ``$ref`` (the keywords beside a ``$ref`` win)."""
    if isinstance(schema, list):
        return [_resolve(item, definitions, where) for item in schema]
    if not isinstance(schema, dict):
        return schema
    resolved = {key: _resolve(value, definitions, where) for key, value in schema.items()}
    if "$ref" in resolved:
        ref = resolved.pop("$ref")
        m = DEFINITION_REF.match(str(ref))
        if not m or m["name"] not in definitions:
            raise ChartSchemaError(f"{where}: unknown $ref {ref!r} (declare it with @schemaDef)")
        base = _resolve(copy.deepcopy(definitions[m["name"]]), definitions, where)
        resolved = {**base, **resolved}
    return resolved


def _leaf(value: Any, param: Param, definitions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kind: Any = json_type(value)
    for modifier in param.modifiers:
        kind = TYPE_MODIFIERS.get(modifier, kind)
    extra = _resolve(param.schema, definitions, param.path)
    if kind == "null" and "type" not in extra:
        raise ChartSchemaError(
            f"{param.path}: a null default says nothing of the type; add '## @schema type: ...'"
        )
    if "nullable" in param.modifiers and kind != "null":
        kind = [kind, "null"]
    node: dict[str, Any] = {"description": param.description}
    node["type"] = extra.pop("type", kind)
    node.update(extra)
    return node


def build_schema(values: dict[str, Any], annotations: Annotations) -> dict[str, Any]:
    """The JSON schema (draft-07) of a chart's values.

    Args:
        values: The parsed values.yaml.
        annotations: Its comments (:func:`parse_annotations`).

    Returns:
        The schema: a property for every value, closed objects for the mappings whose keys are
        documented one by one.

    Raises:
        ChartSchemaError: A value without an ``@param``, or an ``@param`` for no value.
    """
    params = annotations.params
    used: set[str] = set()

    def node(value: Any, path: str) -> dict[str, Any]:
        if path in params:
            used.add(path)
            return _leaf(value, params[path], annotations.definitions)
        if isinstance(value, dict) and value:
            return closed(value, path + ".")
        raise ChartSchemaError(f"{path}: no '## @param {path} DESCRIPTION' comment in values.yaml")

    def closed(mapping: dict[str, Any], prefix: str) -> dict[str, Any]:
        properties = {str(key): node(value, f"{prefix}{key}") for key, value in mapping.items()}
        return {"type": "object", "additionalProperties": False, "properties": properties}

    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "title": TITLE}
    schema.update(closed(values, ""))
    if unused := sorted(set(params) - used):
        lines = ", ".join(f"{p} (line {params[p].line})" for p in unused)
        raise ChartSchemaError(f"@param comments for values that do not exist: {lines}")
    try:
        Draft7Validator.check_schema(schema)
    except SchemaError as e:
        where = ".".join(str(p) for p in e.path if p != "properties")
        raise ChartSchemaError(f"{where}: invalid @schema: {e.message}") from e
    return schema


def write_schema(values_file: Path, out: Path) -> None:
    """Write ``out`` (values.schema.json) from ``values_file``."""
    text = values_file.read_text()
    values = yaml.safe_load(text) or {}
    schema = build_schema(values, parse_annotations(text))
    out.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")


def write_readme(values_file: Path, readme: Path, generator: Path) -> None:
    """Rewrite the ``## Parameters`` section of ``readme`` with readme-generator-for-helm.

    Raises:
        ChartSchemaError: The generator is not installed, or refused the values file (its
            output, which names the value, is in the message).
    """
    if not (generator.is_file() or shutil.which(str(generator))):
        raise ChartSchemaError(
            f"{generator} is missing: run 'bash scripts/install-chart-tools.sh .tools' "
            "(make chart-schema does)"
        )
    done = subprocess.run(
        [str(generator), "--values", str(values_file), "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        # Its INFO lines and "Skipping check" chatter drown the errors; keep what matters.
        noise = ("INFO:", "Skipping check for")
        lines = [x for x in (done.stdout + done.stderr).splitlines() if not x.startswith(noise)]
        raise ChartSchemaError("readme-generator-for-helm failed:\n" + "\n".join(lines[-40:]))
    # It joins lines without a final newline; keep the file ending in one.
    text = readme.read_text()
    readme.write_text(text.rstrip("\n") + "\n")


def generate(chart: Path, out: Path, generator: Path = README_GENERATOR) -> None:
    """Write values.schema.json and README.md for ``chart`` into ``out`` (may be ``chart``).

    Both are built in a temporary folder first, so a failure changes nothing.
    """
    values_file = chart / "values.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_schema(values_file, work / SCHEMA_FILE)
        shutil.copyfile(chart / README_FILE, work / README_FILE)
        write_readme(values_file, work / README_FILE, generator)
        out.mkdir(parents=True, exist_ok=True)
        for name in (SCHEMA_FILE, README_FILE):
            shutil.copyfile(work / name, out / name)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; exit status 1 with the reason on bad values.yaml comments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=CHART, help="chart folder (%(default)s)")
    parser.add_argument("--out", type=Path, help="write here instead of into the chart folder")
    parser.add_argument(
        "--readme-generator", type=Path, default=README_GENERATOR, help="(%(default)s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or args.chart
    try:
        generate(args.chart, out, args.readme_generator)
    except ChartSchemaError as e:
        logger.error("chart_schema.py: %s", e)
        return 1
    logger.info("wrote %s and %s in %s", SCHEMA_FILE, README_FILE, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

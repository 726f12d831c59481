"""Every string of the portal exists in both languages.

The portal's sources write keys in full (`t("vms:action.rename")`) or, for a key built
from an API value, with a literal prefix (``t(`common:powerState.${state}`)``); see
portal/CONVENTIONS.md. These tests read `portal/src` for both, and the locale files for
what each language has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.domain.events import EVENT_KINDS
from tessera.domain.inventory import PowerState
from tessera.domain.tasks import ItemState, TaskKind, TaskState
from tessera.providers import capability_matrix

PORTAL = Path(__file__).resolve().parents[2] / "portal"
SRC = PORTAL / "src"
LOCALES = SRC / "locales"
LANGUAGES = ("en", "zh-CN")
PLURAL = re.compile(r"_(zero|one|two|few|many|other)$")
PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def _flatten(tree: dict[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _catalog(lng: str) -> dict[str, object]:
    """`ns:dotted.key` -> value for one language."""
    out: dict[str, object] = {}
    for file in sorted((LOCALES / lng).glob("*.json")):
        tree = json.loads(file.read_text(encoding="utf-8"))
        for key, value in _flatten(tree):
            out[f"{file.stem}:{key}"] = value
    return out


CATALOGS = {lng: _catalog(lng) for lng in LANGUAGES}
NAMESPACES = sorted({key.split(":", 1)[0] for key in CATALOGS["en"]})
_NS = "|".join(re.escape(ns) for ns in NAMESPACES)
# A key anywhere in the code: "ns:path" in quotes (t("..."), ternaries, arrays alike).
LITERAL_KEY = re.compile(rf"""["'`]((?:{_NS}):[A-Za-z0-9_.-]+)["'`]""")
# A key built from a value: `ns:path.${...}`; the literal part must lead to some keys.
TEMPLATE_KEY = re.compile(rf"`((?:{_NS}):[A-Za-z0-9_.-]*)\$\{{")
# t( with anything but a string or template literal first: a key no test could see.
OPAQUE_CALL = re.compile(r"(?<![\w.$])t\(\s*(?![\"'`])")


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*") if p.suffix in {".ts", ".tsx"})


def _has(catalog: dict[str, object], key: str) -> bool:
    """A key is there as written or as its plural forms."""
    return key in catalog or any(PLURAL.sub("", k) == key for k in catalog if k.startswith(key))


def _has_prefix(catalog: dict[str, object], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in catalog)


def test_the_locales_are_there() -> None:
    for lng in LANGUAGES:
        assert len(CATALOGS[lng]) > 100, f"{lng}: locale files missing under {LOCALES / lng}"
    assert {"common", "errors", "vms", "pools", "tasks"} <= set(NAMESPACES)


def test_every_key_in_the_code_exists_in_both_languages() -> None:
    missing: list[str] = []
    seen = 0
    for source in _sources():
        text = source.read_text(encoding="utf-8")
        where = source.relative_to(PORTAL)
        for match in LITERAL_KEY.finditer(text):
            seen += 1
            key = match.group(1)
            for lng in LANGUAGES:
                if not _has(CATALOGS[lng], key):
                    missing.append(f"{where}: {key} missing in {lng}")
        for match in TEMPLATE_KEY.finditer(text):
            seen += 1
            prefix = match.group(1)
            for lng in LANGUAGES:
                if not _has_prefix(CATALOGS[lng], prefix):
                    missing.append(f"{where}: nothing under {prefix}… in {lng}")
    assert seen > 200, "no translation keys found in portal/src: has the convention changed?"
    assert not missing, "untranslated keys:\n" + "\n".join(sorted(set(missing)))


def test_keys_are_written_where_the_test_can_read_them() -> None:
    opaque = []
    for source in _sources():
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if OPAQUE_CALL.search(line):
                opaque.append(f"{source.relative_to(PORTAL)}:{number}: {line.strip()}")
    assert not opaque, "t() with a key that is not a literal:\n" + "\n".join(opaque)


def test_both_languages_have_the_same_keys() -> None:
    def keys(lng: str) -> set[str]:
        return {PLURAL.sub("", key) for key in CATALOGS[lng]}

    only_en = sorted(keys("en") - keys("zh-CN"))
    only_zh = sorted(keys("zh-CN") - keys("en"))
    assert not only_en, f"only in en: {only_en}"
    assert not only_zh, f"only in zh-CN: {only_zh}"


def test_no_value_is_empty_and_placeholders_match() -> None:
    problems = []
    for lng in LANGUAGES:
        for key, value in CATALOGS[lng].items():
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{lng} {key}: empty or not a string")
    en, zh = CATALOGS["en"], CATALOGS["zh-CN"]
    for key in en.keys() & zh.keys():
        a = set(PLACEHOLDER.findall(str(en[key])))
        b = set(PLACEHOLDER.findall(str(zh[key])))
        if a != b:
            problems.append(f"{key}: en has {sorted(a)}, zh-CN has {sorted(b)}")
    assert not problems, "\n".join(problems)


def _dotted(value: str) -> str:
    return value.replace(".", "_")


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("common:powerState.", [s.value for s in PowerState]),
        ("common:taskState.", [s.value for s in TaskState] + [s.value for s in ItemState]),
        ("tasks:kind.", [_dotted(k.value) for k in TaskKind]),
        ("common:eventKind.", [_dotted(k) for k in EVENT_KINDS]),
        (
            "pools:capability.",
            sorted({flag for flags in capability_matrix().values() for flag in flags}),
        ),
        ("common:role.", ["reader", "member", "project-admin"]),
    ],
)
def test_every_backend_value_has_a_label(prefix: str, values: list[str]) -> None:
    for lng in LANGUAGES:
        missing = [v for v in values if prefix + v not in CATALOGS[lng]]
        assert not missing, f"{lng}: no label for {prefix}{missing}"


def test_every_task_step_and_error_code_has_a_label() -> None:
    import tessera.errors
    from tessera.providers import faults
    from tessera.tasks import workflows

    steps = set(workflows._STEPS) | set(workflows._LOCAL_STEPS)
    steps |= {step for plan in workflows._LOCAL_PLANS.values() for step in plan}
    codes = {
        cls.code
        for module in (tessera.errors, faults)
        for cls in vars(module).values()
        if isinstance(cls, type) and isinstance(getattr(cls, "code", None), str)
    }
    codes.discard("error")  # the base classes' placeholder, never sent
    for lng in LANGUAGES:
        catalog = CATALOGS[lng]
        no_step = sorted(s for s in steps if f"tasks:step.{s.replace('-', '_')}" not in catalog)
        no_code = sorted(c for c in codes if f"errors:code.{c}" not in catalog)
        assert not no_step, f"{lng}: no label for steps {no_step}"
        assert not no_code, f"{lng}: no message for error codes {no_code}"


def test_the_task_filter_offers_every_kind_of_task() -> None:
    labels = (SRC / "tasks" / "labels.ts").read_text(encoding="utf-8")
    listed = re.search(r"TASK_KINDS = \[(.*?)\];", labels, re.DOTALL)
    assert listed, "TASK_KINDS not found in src/tasks/labels.ts"
    kinds = re.findall(r'"([a-z_.]+)"', listed.group(1))
    assert sorted(kinds) == sorted(k.value for k in TaskKind)

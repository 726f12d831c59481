"""Every route declares its rule in the policy table; none is implicit."""

from __future__ import annotations

from pathlib import Path

from tessera.api.app import create_app
from tessera.config import Settings
from tessera.identity.policy import RULES


def _operations(tmp_path: Path) -> dict[str, str]:
    spec = create_app(Settings(data_dir=tmp_path / "s")).openapi()
    return {
        op["operationId"]: f"{method.upper()} {path}"
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }


def test_every_route_has_a_rule_and_every_rule_a_route(tmp_path: Path) -> None:
    operations = _operations(tmp_path)
    missing = sorted(f"{name} ({where})" for name, where in operations.items() if name not in RULES)
    assert not missing, f"routes without a policy rule: {missing}"
    stale = sorted(set(RULES) - set(operations))
    assert not stale, f"rules for routes that do not exist: {stale}"


def test_operation_ids_are_the_route_names(tmp_path: Path) -> None:
    """The policy keys routes by name, so two routes must never share one."""
    operations = _operations(tmp_path)
    assert "list_vms" in operations and "login" in operations
    assert len(operations) == len(set(operations))

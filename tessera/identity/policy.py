"""The policy: every API route's rule, in one table (defaults in code, as oslo.policy's).

A route is named by its endpoint function (the OpenAPI operationId). A route missing
here is refused to everyone (403) and fails tests/identity/test_policy.py, so no rule is
ever implicit. Project rules are about the caller's role in the project their token is
scoped to; which rows of that project they reach is the services' business (a foreign
row is 404, never 403).
"""

from __future__ import annotations

from tessera.identity.model import Rule

P, A, R, M, PA, ADM = (
    Rule.PUBLIC,
    Rule.AUTHENTICATED,
    Rule.READER,
    Rule.MEMBER,
    Rule.PROJECT_ADMIN,
    Rule.ADMIN,
)

RULES: dict[str, Rule] = {
    # system and identity
    "healthz": P,
    "login": P,
    "whoami": A,
    "list_tokens": A,
    "create_token": A,
    "revoke_token": A,
    "list_domains": ADM,
    "create_domain": ADM,
    "list_projects": A,
    "create_project": ADM,
    "show_project": R,
    "delete_project": ADM,
    "list_users": PA,
    "create_user": ADM,
    "show_user": A,
    "update_user": A,
    "delete_user": ADM,
    "list_members": R,
    "assign_role": PA,
    "unassign_role": PA,
    "list_grants": R,
    "add_grant": ADM,
    "remove_grant": ADM,
    "show_quota": R,
    "show_usage": R,
    "set_quota": ADM,
    # pools and inventory (a project sees the pools it is granted)
    "list_providers": R,
    "show_provider": R,
    "add_provider": ADM,
    "delete_provider": ADM,
    "sync_provider": ADM,
    "list_provider_kinds": A,
    "list_vms": R,
    "show_vm": R,
    "adopt_vm": ADM,
    "list_hosts": R,
    "list_clusters": R,
    "list_datastores": R,
    "list_networks": R,
    "list_snapshots": R,
    # VM changes
    "create_vm": M,
    "create_vm_dry_run": M,
    "delete_vm": M,
    "power_vm": M,
    "rename_vm": M,
    "resize_vm": M,
    "add_nic": M,
    "remove_nic": M,
    "add_disk": M,
    "grow_disk": M,
    "remove_disk": M,
    "create_snapshot": M,
    "revert_snapshot": M,
    "delete_snapshot": M,
    "clone_vm": M,
    "convert_to_template": M,
    "convert_to_vm": M,
    "migrate_vm": M,
    "change_vm_tags": M,
    "preview_bulk": M,
    "submit_bulk": M,
    # placement
    "placement_dry_run": M,
    "list_placement_groups": R,
    "show_placement_group": R,
    "create_placement_group": M,
    "delete_placement_group": M,
    "add_placement_group_member": M,
    "remove_placement_group_member": M,
    # tasks and events
    "list_tasks": R,
    "show_task": R,
    "cancel_task": M,
    "retry_task": M,
    "list_task_items": R,
    "list_events": R,
    "list_vm_events": R,
    # the audit log: an admin's in full, a project admin's of their project
    "list_audit": PA,
}

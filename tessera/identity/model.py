"""Who is calling and what they may do: roles, rules and the principal. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A user's role in one project; the platform admin is a flag on the user instead."""

    READER = "reader"
    MEMBER = "member"
    PROJECT_ADMIN = "project-admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.READER: 1, Role.MEMBER: 2, Role.PROJECT_ADMIN: 3}


class Rule(StrEnum):
    """What a route demands of its caller (tessera.identity.policy says which route)."""

    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    READER = "project:reader"
    MEMBER = "project:member"
    PROJECT_ADMIN = "project:admin"
    ADMIN = "admin"


_RULE_ROLE = {
    Rule.READER: Role.READER,
    Rule.MEMBER: Role.MEMBER,
    Rule.PROJECT_ADMIN: Role.PROJECT_ADMIN,
}


class TokenKind(StrEnum):
    API = "api"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, from its token: a user, the project the token is scoped
    to (none for a platform admin's unscoped token) and the role held there."""

    user_id: str
    user_name: str
    domain_id: str
    is_admin: bool
    project_id: str | None
    role: Role | None
    token_id: str

    def allows(self, rule: Rule) -> bool:
        if rule in (Rule.PUBLIC, Rule.AUTHENTICATED) or self.is_admin:
            return True
        if rule is Rule.ADMIN:
            return False
        return self.role is not None and self.role.rank >= _RULE_ROLE[rule].rank

    def sees_project(self, project_id: str | None) -> bool:
        """Whether rows of `project_id` exist for this caller (others answer 404)."""
        return self.is_admin or (project_id is not None and project_id == self.project_id)

"""Identity services: bootstrap, login with lockout, tokens, and the admin's management of
domains, projects, users, role assignments, grants and quotas.

A caller sees a project's rows only when `Principal.sees_project` says so; anything else
is answered as if it did not exist (NotFoundError), so existence never leaks.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera.config import Settings
from tessera.db.rows import (
    DomainRow,
    GrantRow,
    NetworkRow,
    ProjectRow,
    ProviderRow,
    QuotaRow,
    RoleAssignmentRow,
    TokenRow,
    UserRow,
    ZoneRow,
    utcnow,
)
from tessera.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    TesseraError,
    TooManyRequestsError,
    UnauthorizedError,
)
from tessera.identity import directory, tokens
from tessera.identity.model import Principal, Role, TokenKind
from tessera.identity.passwords import hash_password, verify_password
from tessera.identity.quotas import QUOTA_FIELDS, QuotaUsage, project_usage
from tessera.runtime import Runtime

DEFAULT_DOMAIN = "default"
ADMIN_USER = "admin"
BAD_LOGIN = "invalid user name or password"
GRANT_KINDS = {"provider": ProviderRow, "zone": ZoneRow, "network": NetworkRow}
_Row = TypeVar("_Row")


def bootstrap(rt: Runtime, admin_token: str) -> None:
    """The default domain and the platform admin, once: the admin's API token is the one
    in the data dir's token file, and a first password is written beside it (0600).
    API processes starting together race to do it; the losers find it done."""
    for attempt in range(3):
        try:
            password = _bootstrap_once(rt, admin_token)
        except IntegrityError:
            if attempt == 2:
                raise
            time.sleep(0.1 * (attempt + 1))
            continue
        if password is not None:  # written once the admin surely exists
            path = rt.settings.admin_password_file
            path.touch(mode=0o600)
            path.write_text(password + "\n")
        return


def _bootstrap_once(rt: Runtime, admin_token: str) -> str | None:
    """The admin's first password when this call created the admin."""
    password = None
    with rt.sessions.begin() as session:
        domain = session.scalar(select(DomainRow).where(DomainRow.name == DEFAULT_DOMAIN))
        if domain is None:
            domain = DomainRow(name=DEFAULT_DOMAIN, description="Created at first start.")
            session.add(domain)
            session.flush()
        admin = session.scalar(
            select(UserRow).where(UserRow.domain_id == domain.id, UserRow.name == ADMIN_USER)
        )
        if admin is None:
            password = secrets.token_urlsafe(18)
            admin = UserRow(
                domain_id=domain.id,
                name=ADMIN_USER,
                display_name="Platform administrator",
                password_hash=hash_password(password),
                is_admin=True,
            )
            session.add(admin)
            session.flush()
        digest = tokens.digest_of(admin_token)
        if session.scalar(select(TokenRow.id).where(TokenRow.digest == digest)) is None:
            tokens.issue(
                session,
                admin,
                kind=TokenKind.API,
                project_id=None,
                ttl=None,
                name="bootstrap",
                secret=admin_token,
            )
    return password


class LoginThrottle:
    """At most `per_minute` login attempts per source address (a sliding minute)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, source: str) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(source, deque())
            while seen and seen[0] < now - 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                wait = 60 - (now - seen[0])
                raise TooManyRequestsError(
                    "too many login attempts from this address; wait and try again",
                    retry_after_s=max(wait, 1.0),
                )
            seen.append(now)


@dataclass(frozen=True)
class LoginSession:
    token: str
    expires_at: datetime
    principal: Principal


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _domain(session: Session, name_or_id: str) -> DomainRow:
    row = session.scalar(
        select(DomainRow).where(or_(DomainRow.id == name_or_id, DomainRow.name == name_or_id))
    )
    if row is None:
        raise NotFoundError(f"domain {name_or_id!r} not found")
    return row


def _project_in(session: Session, domain_id: str, name_or_id: str) -> ProjectRow | None:
    return session.scalar(
        select(ProjectRow).where(
            ProjectRow.domain_id == domain_id,
            or_(ProjectRow.id == name_or_id, ProjectRow.name == name_or_id),
        )
    )


def login(
    rt: Runtime, *, domain: str, user: str, password: str, project: str | None
) -> LoginSession:
    """A session token for a user's password. Wrong passwords count; after
    `login_max_failures` in a row the account is locked for `login_lockout_s` (429).

    The directory checks the password of a user whose source is ldap, and of a name
    unknown here in the directory's domain: its first good login makes the local user
    (no password, no roles), so an admin can then give them a role."""
    settings = rt.settings
    refusal: TesseraError = UnauthorizedError(BAD_LOGIN)
    with rt.sessions.begin() as session:
        domain_row = session.scalar(
            select(DomainRow).where(or_(DomainRow.id == domain, DomainRow.name == domain))
        )
        row = _login_user(session, settings, domain_row, user)
        now = datetime.now(UTC)
        _check_unlocked(row, now)
        if domain_row is not None and _directory_checks(settings, domain_row, row):
            vouched = directory.authenticate(settings, user, password)
            if vouched is not None and row is None:
                row = _directory_user(session, domain_row.id, vouched)
                _check_unlocked(row, now)
            ok = vouched is not None and row is not None and row.source == "ldap"
        else:
            ok = verify_password(row.password_hash if row else None, password)
        if row is None or not ok or not row.enabled:
            if row is not None and not ok:
                _count_failure(settings, row, now)
        else:
            row.failed_logins, row.locked_until = 0, None
            try:
                return _open_session(session, rt, row, project)
            except (ForbiddenError, InvalidInputError) as exc:
                refusal = exc  # and commit: a directory user's first login made them
    raise refusal


def _login_user(
    session: Session, settings: Settings, domain: DomainRow | None, name: str
) -> UserRow | None:
    """The user logging in. A directory matches names regardless of case, so in its
    domain "LENA" is the directory user "lena" too: her lockout holds for every spelling."""
    if domain is None:
        return None
    row = session.scalar(
        select(UserRow).where(UserRow.domain_id == domain.id, UserRow.name == name)
    )
    if row is None and settings.ldap_url and domain.name == settings.ldap_domain:
        spelled = list(
            session.scalars(
                select(UserRow).where(
                    UserRow.domain_id == domain.id,
                    UserRow.source == "ldap",
                    func.lower(UserRow.name) == name.lower(),
                )
            )
        )
        row = spelled[0] if len(spelled) == 1 else None
    return row


def _count_failure(settings: Settings, row: UserRow, now: datetime) -> None:
    """One more wrong password; `login_max_failures` in a row lock the account."""
    row.failed_logins += 1
    if row.failed_logins >= settings.login_max_failures:
        row.locked_until = now + timedelta(seconds=settings.login_lockout_s)
        row.failed_logins = 0


def _check_unlocked(row: UserRow | None, now: datetime) -> None:
    if row is not None and row.locked_until and _aware(row.locked_until) > now:
        wait = (_aware(row.locked_until) - now).total_seconds()
        raise TooManyRequestsError(
            "the account is locked after repeated failed logins", retry_after_s=wait
        )


def _directory_checks(settings: Settings, domain: DomainRow, user: UserRow | None) -> bool:
    """Whether the directory, not a local hash, checks this login's password."""
    if user is not None:
        return user.source == "ldap"
    return bool(settings.ldap_url) and domain.name == settings.ldap_domain


def _directory_user(session: Session, domain_id: str, vouched: directory.DirectoryUser) -> UserRow:
    """The local user of a directory user, by the name as the directory spells it; made
    (no password, no roles) at their first login."""
    row = session.scalar(
        select(UserRow).where(UserRow.domain_id == domain_id, UserRow.name == vouched.name)
    )
    if row is None:
        row = UserRow(
            domain_id=domain_id,
            name=vouched.name,
            display_name=vouched.display_name[:128],
            email=vouched.email[:256],
            source="ldap",
            password_hash=None,
        )
        session.add(row)
        session.flush()
    return row


def _open_session(
    session: Session, rt: Runtime, user: UserRow, project: str | None
) -> LoginSession:
    project_id, role = _scope(session, user, project)
    ttl = timedelta(seconds=rt.settings.session_ttl_s)
    token, secret = tokens.issue(
        session, user, kind=TokenKind.SESSION, project_id=project_id, ttl=ttl, name="login"
    )
    principal = Principal(
        user_id=user.id,
        user_name=user.name,
        domain_id=user.domain_id,
        is_admin=user.is_admin,
        project_id=project_id,
        role=role,
        token_id=token.id,
    )
    assert token.expires_at is not None
    return LoginSession(secret, token.expires_at, principal)


def _scope(session: Session, user: UserRow, project: str | None) -> tuple[str | None, Role | None]:
    """The project a token is for: the one asked for (the user must hold a role there,
    unless a platform admin), else the user's only project; none for an admin."""
    held = dict(
        session.execute(
            select(RoleAssignmentRow.project_id, RoleAssignmentRow.role).where(
                RoleAssignmentRow.user_id == user.id
            )
        ).all()
    )
    if project is None:
        if user.is_admin or not held:
            if not user.is_admin:
                raise ForbiddenError("the user has no role in any project")
            return None, None
        if len(held) > 1:
            raise InvalidInputError("the user has roles in several projects; name one")
        (project_id, role), *_ = held.items()
        return project_id, Role(role)
    row = _project_in(session, user.domain_id, project)
    if row is None or (row.id not in held and not user.is_admin):
        raise ForbiddenError(f"the user has no role in project {project!r}")
    role_name = held.get(row.id)
    return row.id, Role(role_name) if role_name else None


def create_api_token(
    rt: Runtime, caller: Principal, *, name: str, project: str | None, days: int
) -> tuple[TokenRow, str]:
    """An API token for the caller, scoped to a project they hold a role in."""
    if days > rt.settings.api_token_max_days:
        raise InvalidInputError(f"an API token lives at most {rt.settings.api_token_max_days} days")
    with rt.sessions.begin() as session:
        user = session.get(UserRow, caller.user_id)
        if user is None:
            raise NotFoundError("the caller's user is gone")
        project_id, _ = _scope(session, user, project or caller.project_id)
        return tokens.issue(
            session,
            user,
            kind=TokenKind.API,
            project_id=project_id,
            ttl=timedelta(days=days),
            name=name,
        )


def list_tokens(session: Session, caller: Principal) -> list[TokenRow]:
    return list(
        session.scalars(
            select(TokenRow)
            .where(TokenRow.user_id == caller.user_id)
            .order_by(TokenRow.created_at, TokenRow.id)
        )
    )


def revoke_token(rt: Runtime, caller: Principal, token_id: str) -> TokenRow:
    """Revoke one of the caller's tokens (an admin: anyone's); 404 for others'."""
    with rt.sessions.begin() as session:
        row = session.get(TokenRow, token_id)
        if row is None or (row.user_id != caller.user_id and not caller.is_admin):
            raise NotFoundError(f"token {token_id} not found")
        row.revoked_at = row.revoked_at or utcnow()
        return row


# --- domains, projects, users ------------------------------------------------------


def list_domains(session: Session) -> list[DomainRow]:
    return list(session.scalars(select(DomainRow).order_by(DomainRow.name)))


def create_domain(rt: Runtime, name: str, description: str) -> DomainRow:
    return _insert(rt, DomainRow(name=name, description=description), f"domain {name!r}")


def _insert(rt: Runtime, row: _Row, what: str) -> _Row:
    try:
        with rt.sessions.begin() as session:
            session.add(row)
            session.flush()
            return row
    except IntegrityError:
        raise ConflictError(f"{what} already exists") from None


def list_projects(session: Session, caller: Principal) -> list[ProjectRow]:
    """Every project for an admin; for anyone else the projects they hold a role in."""
    stmt = select(ProjectRow).order_by(ProjectRow.name, ProjectRow.id)
    if not caller.is_admin:
        stmt = stmt.join(RoleAssignmentRow, RoleAssignmentRow.project_id == ProjectRow.id).where(
            RoleAssignmentRow.user_id == caller.user_id
        )
    return list(session.scalars(stmt))


def get_project(session: Session, caller: Principal, project_id: str) -> ProjectRow:
    row = session.get(ProjectRow, project_id)
    if row is None or not (caller.is_admin or _holds_role(session, caller.user_id, row.id)):
        raise NotFoundError(f"project {project_id} not found")
    return row


def _holds_role(session: Session, user_id: str, project_id: str) -> bool:
    return session.get(RoleAssignmentRow, (user_id, project_id)) is not None


def create_project(rt: Runtime, *, domain: str, name: str, description: str) -> ProjectRow:
    with rt.sessions() as session:
        domain_id = _domain(session, domain).id
    row = ProjectRow(domain_id=domain_id, name=name, description=description)
    return _insert(rt, row, f"project {name!r} in domain {domain!r}")


def delete_project(rt: Runtime, project_id: str) -> None:
    with rt.sessions.begin() as session:
        row = session.get(ProjectRow, project_id)
        if row is None:
            raise NotFoundError(f"project {project_id} not found")
        session.delete(row)


def list_users(session: Session, caller: Principal) -> list[UserRow]:
    """Every user for an admin; a project admin sees the members of their project."""
    stmt = select(UserRow).order_by(UserRow.name, UserRow.id)
    if not caller.is_admin:
        stmt = stmt.join(RoleAssignmentRow, RoleAssignmentRow.user_id == UserRow.id).where(
            RoleAssignmentRow.project_id == caller.project_id
        )
    return list(session.scalars(stmt))


def create_user(
    rt: Runtime,
    *,
    domain: str,
    name: str,
    password: str | None,
    display_name: str,
    email: str,
    is_admin: bool,
    source: str = "local",
) -> UserRow:
    """A local user (with a password), or a directory user (source ldap, none here)
    made ahead of their first login so that they can be given roles first."""
    if source == "ldap" and password:
        raise InvalidInputError("the directory holds a directory user's password; give none")
    with rt.sessions() as session:
        domain_id = _domain(session, domain).id
    row = UserRow(
        domain_id=domain_id,
        name=name,
        display_name=display_name,
        email=email,
        source=source,
        password_hash=hash_password(password) if password else None,
        is_admin=is_admin,
    )
    return _insert(rt, row, f"user {name!r} in domain {domain!r}")


def get_user(session: Session, caller: Principal, user_id: str) -> UserRow:
    row = session.get(UserRow, user_id)
    visible = row is not None and (
        caller.is_admin
        or row.id == caller.user_id
        or (caller.project_id is not None and _holds_role(session, row.id, caller.project_id))
    )
    if row is None or not visible:
        raise NotFoundError(f"user {user_id} not found")
    return row


def update_user(
    rt: Runtime,
    caller: Principal,
    user_id: str,
    *,
    password: str | None = None,
    current_password: str | None = None,
    enabled: bool | None = None,
    locale: str | None = None,
) -> UserRow:
    """A user changes their own password (giving the current one, so that a stolen
    session cannot take the account over) and language; an admin also enables, disables
    and unlocks, and resets another's password without knowing it (a new password clears
    a lockout). A new password ends the user's other login sessions; API tokens stay."""
    if current_password is not None and password is None:
        raise InvalidInputError("current_password goes with a new password")
    if password is not None and user_id == caller.user_id:
        _check_current_password(rt, user_id, current_password)
    with rt.sessions.begin() as session:
        row = get_user(session, caller, user_id)
        if row.id != caller.user_id and not caller.is_admin:
            raise ForbiddenError("only an admin changes another user")
        if enabled is not None:
            if not caller.is_admin:
                raise ForbiddenError("only an admin enables or disables a user")
            row.enabled = enabled
        if password is not None:
            if row.source == "ldap":
                raise InvalidInputError("a directory user's password is changed in the directory")
            row.password_hash = hash_password(password)
            row.failed_logins, row.locked_until = 0, None
            session.execute(
                update(TokenRow)
                .where(
                    TokenRow.user_id == row.id,
                    TokenRow.kind == TokenKind.SESSION.value,
                    TokenRow.revoked_at.is_(None),
                    TokenRow.id != caller.token_id,
                )
                .values(revoked_at=utcnow())
            )
        if locale is not None:
            row.locale = locale
        return row


def _check_current_password(rt: Runtime, user_id: str, current: str | None) -> None:
    """The caller's own current password, checked as a login checks it: a wrong one
    counts toward the lockout (committed before the refusal), and a locked account is
    refused. A directory user's is left to update_user to refuse."""
    if current is None:
        raise InvalidInputError("to change your own password, give your current one too")
    with rt.sessions.begin() as session:
        row = session.get(UserRow, user_id)
        if row is None or row.source == "ldap":
            return
        now = datetime.now(UTC)
        _check_unlocked(row, now)
        if verify_password(row.password_hash, current):
            return
        _count_failure(rt.settings, row, now)
    raise ForbiddenError("the current password is wrong")


def delete_user(rt: Runtime, caller: Principal, user_id: str) -> None:
    with rt.sessions.begin() as session:
        row = get_user(session, caller, user_id)
        if row.id == caller.user_id:
            raise ConflictError("you cannot delete yourself")
        session.delete(row)


# --- role assignments, grants, quotas ------------------------------------------------


def _own_project(session: Session, caller: Principal, project_id: str) -> ProjectRow:
    """A project the caller manages: any for an admin, their own for a project admin."""
    row = session.get(ProjectRow, project_id)
    if row is None or not caller.sees_project(project_id):
        raise NotFoundError(f"project {project_id} not found")
    return row


def list_members(
    session: Session, caller: Principal, project_id: str
) -> list[tuple[RoleAssignmentRow, UserRow]]:
    _own_project(session, caller, project_id)
    return [
        (assignment, user)
        for assignment, user in session.execute(
            select(RoleAssignmentRow, UserRow)
            .join(UserRow, UserRow.id == RoleAssignmentRow.user_id)
            .where(RoleAssignmentRow.project_id == project_id)
            .order_by(UserRow.name)
        )
    ]


def assign_role(rt: Runtime, caller: Principal, project_id: str, user_id: str, role: Role) -> None:
    with rt.sessions.begin() as session:
        project = _own_project(session, caller, project_id)
        user = session.get(UserRow, user_id)
        if user is None or user.domain_id != project.domain_id:
            raise NotFoundError(f"user {user_id} not found in the project's domain")
        found = session.get(RoleAssignmentRow, (user_id, project_id))
        if found is None:
            session.add(RoleAssignmentRow(user_id=user_id, project_id=project_id, role=role))
        else:
            found.role = role.value


def unassign_role(rt: Runtime, caller: Principal, project_id: str, user_id: str) -> None:
    with rt.sessions.begin() as session:
        _own_project(session, caller, project_id)
        gone = session.execute(
            delete(RoleAssignmentRow).where(
                RoleAssignmentRow.project_id == project_id, RoleAssignmentRow.user_id == user_id
            )
        )
        if not getattr(gone, "rowcount", 0):
            raise NotFoundError(f"user {user_id} has no role in project {project_id}")


def list_grants(session: Session, caller: Principal, project_id: str) -> list[GrantRow]:
    _own_project(session, caller, project_id)
    return list(
        session.scalars(
            select(GrantRow)
            .where(GrantRow.project_id == project_id)
            .order_by(GrantRow.target_kind, GrantRow.target_id)
        )
    )


def grant(rt: Runtime, caller: Principal, project_id: str, kind: str, target_id: str) -> None:
    """Let a project use a pool, a zone or a network; granting twice changes nothing."""
    if kind not in GRANT_KINDS:
        raise InvalidInputError(f"a grant is of a {', '.join(GRANT_KINDS)}")
    with rt.sessions.begin() as session:
        _own_project(session, caller, project_id)
        if session.get(GRANT_KINDS[kind], target_id) is None:
            raise InvalidInputError(f"no {kind} {target_id}")
        if session.get(GrantRow, (project_id, kind, target_id)) is None:
            session.add(GrantRow(project_id=project_id, target_kind=kind, target_id=target_id))


def revoke_grant(
    rt: Runtime, caller: Principal, project_id: str, kind: str, target_id: str
) -> None:
    with rt.sessions.begin() as session:
        _own_project(session, caller, project_id)
        row = session.get(GrantRow, (project_id, kind, target_id))
        if row is None:
            raise NotFoundError(f"project {project_id} has no grant of {kind} {target_id}")
        session.delete(row)


def get_quota(session: Session, caller: Principal, project_id: str) -> dict[str, int | None]:
    _own_project(session, caller, project_id)
    row = session.get(QuotaRow, project_id)
    return {name: getattr(row, name) if row else None for name in QUOTA_FIELDS}


def get_usage(session: Session, caller: Principal, project_id: str) -> list[QuotaUsage]:
    """Each quota's limit, what the project uses and what its unfinished tasks reserve."""
    _own_project(session, caller, project_id)
    return project_usage(session, project_id)


def set_quota(rt: Runtime, project_id: str, limits: dict[str, int | None]) -> dict[str, int | None]:
    """Set the given limits (None: unlimited); the others keep their value."""
    unknown = set(limits) - set(QUOTA_FIELDS)
    if unknown:
        raise InvalidInputError(f"unknown quota(s): {', '.join(sorted(unknown))}")
    with rt.sessions.begin() as session:
        if session.get(ProjectRow, project_id) is None:
            raise NotFoundError(f"project {project_id} not found")
        row = session.get(QuotaRow, project_id)
        if row is None:
            row = QuotaRow(project_id=project_id)
            session.add(row)
        for name, value in limits.items():
            setattr(row, name, value)
        session.flush()
        return {name: getattr(row, name) for name in QUOTA_FIELDS}

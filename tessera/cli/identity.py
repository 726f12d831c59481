"""`tessera login|logout|whoami` and the commands that manage who may do what: projects,
users, role assignments, grants, quotas and API tokens.

Everything goes through the API, so the policy that guards it guards the CLI too. Objects
are named by name or id; names are resolved through the API. Passwords are read from a
hidden prompt or standard input, never from the command line (which `ps` shows to all).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tessera.cli.client import (
    ANONYMOUS,
    FROM_SESSION,
    ApiClient,
    Credentials,
    find_provider_id,
)
from tessera.cli.errors import (
    EXIT_CONFLICT,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_UNAUTHORIZED,
    CliError,
    reports_errors,
)
from tessera.cli.output import Output, OutputFormat, console, emit, err_console
from tessera.cli.tasks import _object_id
from tessera.config import Settings
from tessera.identity.model import Role

project_app = typer.Typer(
    help="Projects: the tenants that own VMs and are granted pools.", no_args_is_help=True
)
user_app = typer.Typer(
    help="Users: local (a password) or from the directory.", no_args_is_help=True
)
role_app = typer.Typer(help="Users' roles in projects.", no_args_is_help=True)
grant_app = typer.Typer(
    help="Which pools, zones and networks a project may use.", no_args_is_help=True
)
quota_app = typer.Typer(help="A project's limits.", no_args_is_help=True)
token_app = typer.Typer(help="Your API tokens, for scripts.", no_args_is_help=True)

PROJECT_COLUMNS = ("name", "description", "domain_id", "created_at", "id")
USER_COLUMNS = ("name", "source", "is_admin", "enabled", "locked", "id")
TOKEN_COLUMNS = ("name", "kind", "expires_at", "revoked_at", "id")
QUOTAS = ("vms", "vcpus", "ram_mib", "disk_gib", "floating_ips", "snapshots")

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Name or id; default: your token's project."),
]


def register(app: typer.Typer) -> None:
    """Add the identity commands to the `tessera` command."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    for sub, name in (
        (project_app, "project"),
        (user_app, "user"),
        (role_app, "role"),
        (grant_app, "grant"),
        (quota_app, "quota"),
        (token_app, "token"),
    ):
        app.add_typer(sub, name=name)


def _client() -> ApiClient:
    return ApiClient(Settings())


def _password(
    from_stdin: bool, *, confirm: bool, env: str | None = None, label: str = "Password"
) -> str:
    """A password from standard input (a line), else from `env` when given and set, else
    from a hidden prompt saying `label` (asked twice when `confirm`, as when one is being
    set)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif env and os.environ.get(env):
        password = os.environ[env]
    else:
        password = typer.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)
    if not password:
        raise CliError("the password is empty", EXIT_INVALID)
    return password


def _store_session(path: Path, token: str) -> None:
    """Write the session token readable by its owner only, replacing any older one
    atomically (an older file's looser mode is not inherited)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = path.with_name(path.name + ".new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(token + "\n")
    staging.replace(path)


def _describe(client: ApiClient, me: dict[str, Any]) -> dict[str, Any]:
    """Who a principal is, with its project's name rather than only its id."""
    project = client.get(f"/v1/projects/{me['project_id']}")["name"] if me["project_id"] else None
    return {
        "user": me["user_name"],
        "user_id": me["user_id"],
        "domain_id": me["domain_id"],
        "platform_admin": me["is_admin"],
        "project": project,
        "project_id": me["project_id"],
        "role": me["role"],
        "token_id": me["token_id"],
    }


@reports_errors
def login(
    user: Annotated[str, typer.Option("--user", "-u", help="User name.")] = "admin",
    domain: Annotated[str, typer.Option(help="The user's domain.")] = "default",
    project: Annotated[
        str | None, typer.Option(help="Project to work in (name or id); optional if one.")
    ] = None,
    password_stdin: PasswordStdin = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Log in: the session token is kept (0600) in the data dir for the next commands.

    The password comes from standard input (--password-stdin), TESSERA_PASSWORD, or a
    hidden prompt. The first admin password is in .tessera/admin.password."""
    settings = Settings()
    password = _password(password_stdin, confirm=False, env="TESSERA_PASSWORD")
    body = {"user": user, "domain": domain, "password": password, "project": project}
    opened = ApiClient(settings, credentials=ANONYMOUS).post("/v1/auth/login", body)
    _store_session(settings.session_token_file, opened["token"])
    session = ApiClient(settings, credentials=Credentials(opened["token"], FROM_SESSION))
    emit({**_describe(session, opened["principal"]), "expires_at": opened["expires_at"]}, output)
    if settings.api_token:
        err_console.print(
            "[yellow]note:[/] TESSERA_API_TOKEN is set and is used before this session; "
            "unset it to act as this user"
        )


@reports_errors
def logout() -> None:
    """Revoke the session of `tessera login` and forget it."""
    settings = Settings()
    path = settings.session_token_file
    token = path.read_text().strip() if path.exists() else ""
    if not token:
        console.print("not logged in")
        return
    client = ApiClient(settings, credentials=Credentials(token, FROM_SESSION))
    try:
        me = client.get("/v1/auth/whoami")
        client.delete(f"/v1/auth/tokens/{me['token_id']}")
        said = f"logged out {me['user_name']}"
    except CliError as exc:
        if exc.exit_code != EXIT_UNAUTHORIZED:
            raise  # e.g. the API is away: keep the file, the session may live on
        said = "the session was already over"
    path.unlink(missing_ok=True)
    console.print(said)


@reports_errors
def whoami(output: Output = OutputFormat.TABLE) -> None:
    """Who the CLI acts as: user, project, role, and where its token comes from."""
    client = _client()
    described = _describe(client, client.get("/v1/auth/whoami"))
    emit({**described, "token_from": client.credentials.source}, output)


# --- resolving names ---------------------------------------------------------------


def _id_of(items: list[dict[str, Any]], name_or_id: str, what: str) -> str:
    """The id of the one item with this id or name; an unknown name is passed on as an
    id, so the API answers whether it exists (as it does for what a caller may not see)."""
    found = {i["id"] for i in items if name_or_id in (i["id"], i["name"])}
    if len(found) > 1:
        raise CliError(f"{len(found)} {what}s are named {name_or_id!r}; give the id", EXIT_CONFLICT)
    return found.pop() if found else name_or_id


def _project_id(client: ApiClient, project: str | None) -> str:
    if project is None:
        scoped: str | None = client.get("/v1/auth/whoami")["project_id"]
        if scoped is None:
            raise typer.BadParameter("your token has no project: name one", param_hint="--project")
        return scoped
    return _id_of(client.get("/v1/projects"), project, "project")


def _user_id(client: ApiClient, user: str | None) -> str:
    """A user by name or id; yourself when None. Users outside your view are named by id."""
    me = client.get("/v1/auth/whoami")
    if user is None or user in (me["user_id"], me["user_name"]):
        return str(me["user_id"])
    try:
        users = client.get("/v1/users")
    except CliError as exc:
        if exc.exit_code != EXIT_UNAUTHORIZED:
            raise
        return user  # not allowed to list users: only an id can name one
    return _id_of(users, user, "user")


# --- projects -----------------------------------------------------------------------


@project_app.command("list")
@reports_errors
def project_list(output: Output = OutputFormat.TABLE) -> None:
    """Every project (a platform admin), or those you have a role in."""
    emit(_client().get("/v1/projects"), output, PROJECT_COLUMNS)


@project_app.command("create")
@reports_errors
def project_create(
    name: str,
    domain: Annotated[str, typer.Option(help="Domain name or id.")] = "default",
    description: str = "",
    output: Output = OutputFormat.TABLE,
) -> None:
    """Create a project (platform admins)."""
    body = {"name": name, "domain": domain, "description": description}
    emit(_client().post("/v1/projects", body), output)


@project_app.command("show")
@reports_errors
def project_show(project: str, output: Output = OutputFormat.TABLE) -> None:
    """Show a project."""
    client = _client()
    emit(client.get(f"/v1/projects/{_project_id(client, project)}"), output)


@project_app.command("delete")
@reports_errors
def project_delete(project: str) -> None:
    """Delete a project with its roles, grants and quota (platform admins)."""
    client = _client()
    client.delete(f"/v1/projects/{_project_id(client, project)}")
    console.print(f"deleted project {project}")


# --- users --------------------------------------------------------------------------


@user_app.command("list")
@reports_errors
def user_list(output: Output = OutputFormat.TABLE) -> None:
    """Every user (a platform admin), or your project's members (a project admin)."""
    emit(_client().get("/v1/users"), output, USER_COLUMNS)


@user_app.command("create")
@reports_errors
def user_create(
    name: str,
    domain: Annotated[str, typer.Option(help="Domain name or id.")] = "default",
    display_name: str = "",
    email: str = "",
    admin: Annotated[bool, typer.Option("--admin", help="A platform admin.")] = False,
    ldap: Annotated[
        bool, typer.Option("--ldap", help="The directory checks the password (no local one).")
    ] = False,
    password_stdin: PasswordStdin = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Create a user (platform admins). A local user's password is asked for twice, or
    read from standard input; a directory (--ldap) user has none here."""
    body: dict[str, Any] = {
        "name": name,
        "domain": domain,
        "display_name": display_name,
        "email": email,
        "is_admin": admin,
        "source": "ldap" if ldap else "local",
    }
    if ldap and password_stdin:
        raise typer.BadParameter("a directory user has no password here", param_hint="--ldap")
    if not ldap:
        body["password"] = _password(password_stdin, confirm=True)
    emit(_client().post("/v1/users", body), output)


@user_app.command("show")
@reports_errors
def user_show(user: str, output: Output = OutputFormat.TABLE) -> None:
    """Show a user."""
    client = _client()
    emit(client.get(f"/v1/users/{_user_id(client, user)}"), output)


@user_app.command("passwd")
@reports_errors
def user_passwd(
    user: Annotated[str | None, typer.Argument(help="Default: yourself.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password: yours, after your current one (with --password-stdin: the
    current one on the first line, the new one on the second), or, as an admin, anyone's
    without theirs. It lifts a lockout and ends the user's other login sessions."""
    client = _client()
    user_id = _user_id(client, user)
    body: dict[str, str] = {}
    if user_id == client.get("/v1/auth/whoami")["user_id"]:
        body["current_password"] = _password(
            password_stdin, confirm=False, label="Current password"
        )
    body["password"] = _password(password_stdin, confirm=True, label="New password")
    changed = client.request("PATCH", f"/v1/users/{user_id}", json=body)
    console.print(f"changed the password of {changed['name']}")


def _set_enabled(user: str, enabled: bool) -> None:
    client = _client()
    user_id = _user_id(client, user)
    changed = client.request("PATCH", f"/v1/users/{user_id}", json={"enabled": enabled})
    console.print(f"{'enabled' if enabled else 'disabled'} user {changed['name']}")


@user_app.command("disable")
@reports_errors
def user_disable(user: str) -> None:
    """Disable a user: their tokens stop working at once (platform admins)."""
    _set_enabled(user, False)


@user_app.command("enable")
@reports_errors
def user_enable(user: str) -> None:
    """Enable a disabled user again (platform admins)."""
    _set_enabled(user, True)


@user_app.command("delete")
@reports_errors
def user_delete(user: str) -> None:
    """Delete a user with their roles and tokens (platform admins)."""
    client = _client()
    client.delete(f"/v1/users/{_user_id(client, user)}")
    console.print(f"deleted user {user}")


# --- roles --------------------------------------------------------------------------


@role_app.command("assign")
@reports_errors
def role_assign(
    user: str,
    role: Annotated[Role, typer.Option(help="What the user may do in the project.")],
    project: ProjectOption = None,
) -> None:
    """Give a user a role in a project, replacing the one they had there."""
    client = _client()
    project_id, user_id = _project_id(client, project), _user_id(client, user)
    client.put(f"/v1/projects/{project_id}/members/{user_id}", {"role": role.value})
    console.print(f"{user} is {role.value} of project {project or project_id}")


@role_app.command("unassign")
@reports_errors
def role_unassign(user: str, project: ProjectOption = None) -> None:
    """Take a user's role in a project away."""
    client = _client()
    project_id, user_id = _project_id(client, project), _user_id(client, user)
    client.delete(f"/v1/projects/{project_id}/members/{user_id}")
    console.print(f"{user} has no role in project {project or project_id} any more")


@role_app.command("list")
@reports_errors
def role_list(project: ProjectOption = None, output: Output = OutputFormat.TABLE) -> None:
    """The members of a project and their roles."""
    client = _client()
    members = client.get(f"/v1/projects/{_project_id(client, project)}/members")
    emit(members, output, ("user_name", "role", "user_id"))


# --- grants -------------------------------------------------------------------------

ProviderTarget = Annotated[str | None, typer.Option("--provider", help="Pool name or id.")]
ZoneTarget = Annotated[
    str | None, typer.Option("--zone", help="REGION/ZONE, a zone name if unique, or an id.")
]
NetworkTarget = Annotated[str | None, typer.Option("--network", help="Network name or id.")]


def _zones(client: ApiClient) -> dict[str, str]:
    """Zone id → 'region/zone', for the zones that hold pools (every zone is made by
    registering a pool in it)."""
    return {p["zone_id"]: f"{p['region']}/{p['zone']}" for p in client.get("/v1/providers")}


def _zone_id(client: ApiClient, zone: str) -> str:
    zones = _zones(client)
    found = {z for z, label in zones.items() if zone in (z, label, label.split("/", 1)[1])}
    if not found:
        raise CliError(f"zone {zone!r} not found", EXIT_NOT_FOUND)
    if len(found) > 1:
        raise CliError(f"zone {zone!r} is in several regions; give REGION/ZONE", EXIT_CONFLICT)
    return found.pop()


def _target(
    client: ApiClient, provider: str | None, zone: str | None, network: str | None
) -> tuple[str, str]:
    """The (kind, id) of the one target named."""
    given = [(k, v) for k, v in (("provider", provider), ("zone", zone), ("network", network)) if v]
    if len(given) != 1:
        raise typer.BadParameter("name exactly one of --provider, --zone, --network")
    kind, name = given[0]
    if kind == "provider":
        return kind, find_provider_id(client, name)
    if kind == "zone":
        return kind, _zone_id(client, name)
    return kind, _object_id(client, "/v1/networks", None, name)


def _change_grant(
    method: str, project: str | None, provider: str | None, zone: str | None, network: str | None
) -> tuple[str, str]:
    """PUT or DELETE a project's grant of the one target named; what the grant is of
    ('provider kvm'), and the project as named."""
    client = _client()
    project_id = _project_id(client, project)
    kind, target_id = _target(client, provider, zone, network)
    client.request(method, f"/v1/projects/{project_id}/grants/{kind}/{target_id}")
    return f"{kind} {provider or zone or network}", project or project_id


@grant_app.command("add")
@reports_errors
def grant_add(
    project: ProjectOption = None,
    provider: ProviderTarget = None,
    zone: ZoneTarget = None,
    network: NetworkTarget = None,
) -> None:
    """Let a project use a pool, every pool of a zone, or a network (platform admins)."""
    target, to = _change_grant("PUT", project, provider, zone, network)
    console.print(f"granted {target} to {to}")


@grant_app.command("remove")
@reports_errors
def grant_remove(
    project: ProjectOption = None,
    provider: ProviderTarget = None,
    zone: ZoneTarget = None,
    network: NetworkTarget = None,
) -> None:
    """Take a grant back (platform admins)."""
    target, _ = _change_grant("DELETE", project, provider, zone, network)
    console.print(f"removed the grant of {target}")


@grant_app.command("list")
@reports_errors
def grant_list(project: ProjectOption = None, output: Output = OutputFormat.TABLE) -> None:
    """What a project may use, with the targets' names."""
    client = _client()
    grants = client.get(f"/v1/projects/{_project_id(client, project)}/grants")
    names: dict[str, str] = {}
    if grants:
        names |= {p["id"]: p["name"] for p in client.get("/v1/providers")}
        names |= _zones(client)
        if any(g["kind"] == "network" for g in grants):
            names |= {n["id"]: n["name"] for n in client.get("/v1/networks", limit=1000)["items"]}
    rows = [{**g, "name": names.get(g["target_id"], "")} for g in grants]
    emit(rows, output, ("kind", "name", "target_id", "created_at"))


# --- quotas -------------------------------------------------------------------------


def _limit(value: str | None) -> str | None:
    """Check a limit: a whole number, or 'unlimited'."""
    if value is not None and value != "unlimited" and not value.isdigit():
        raise typer.BadParameter("a whole number or 'unlimited'")
    return value


Limit = Annotated[str | None, typer.Option(callback=_limit, help="A whole number or 'unlimited'.")]


@quota_app.command("show")
@reports_errors
def quota_show(project: ProjectOption = None, output: Output = OutputFormat.TABLE) -> None:
    """A project's limits (none: unlimited)."""
    client = _client()
    quota = client.get(f"/v1/projects/{_project_id(client, project)}/quota")
    if output is OutputFormat.TABLE:
        rows = [{"quota": k, "limit": "unlimited" if v is None else v} for k, v in quota.items()]
        emit(rows, output)
    else:
        emit(quota, output)


@quota_app.command("set")
@reports_errors
def quota_set(
    project: ProjectOption = None,
    vms: Limit = None,
    vcpus: Limit = None,
    ram_mib: Limit = None,
    disk_gib: Limit = None,
    floating_ips: Limit = None,
    snapshots: Limit = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Set some of a project's limits; the others keep theirs (platform admins)."""
    given = dict(zip(QUOTAS, (vms, vcpus, ram_mib, disk_gib, floating_ips, snapshots), strict=True))
    body = {k: None if v == "unlimited" else int(v) for k, v in given.items() if v is not None}
    if not body:
        raise typer.BadParameter("give at least one limit, such as --vms 10")
    client = _client()
    emit(client.put(f"/v1/projects/{_project_id(client, project)}/quota", body), output)


# --- API tokens ---------------------------------------------------------------------


@token_app.command("create")
@reports_errors
def token_create(
    name: str,
    project: Annotated[
        str | None, typer.Option(help="Name or id; default: your session's project.")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days until it expires.")] = 90,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Create an API token for scripts: its secret is printed now and never again."""
    body = {"name": name, "project": project, "expires_in_days": days}
    emit(_client().post("/v1/auth/tokens", body), output)
    err_console.print("[yellow]note:[/] keep the secret now: it is shown only once")


@token_app.command("list")
@reports_errors
def token_list(output: Output = OutputFormat.TABLE) -> None:
    """Your tokens (API tokens and login sessions), never their secrets."""
    emit(_client().get("/v1/auth/tokens"), output, TOKEN_COLUMNS)


@token_app.command("revoke")
@reports_errors
def token_revoke(token: Annotated[str, typer.Argument(help="Name or id.")]) -> None:
    """Revoke one of your tokens: it stops working at once."""
    client = _client()
    live = [t for t in client.get("/v1/auth/tokens") if t["revoked_at"] is None]
    client.delete(f"/v1/auth/tokens/{_id_of(live, token, 'token')}")
    console.print(f"revoked token {token}")

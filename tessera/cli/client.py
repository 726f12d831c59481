"""A small client of the Tessera API for the CLI, mapping errors to stable exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tessera.cli.errors import (
    EXIT_API_UNREACHABLE,
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    EXIT_QUOTA_EXCEEDED,
    EXIT_UNAUTHORIZED,
    EXIT_UNEXPECTED,
    HTTP_EXIT_CODES,
    CliError,
)
from tessera.config import Settings

FROM_ENV, FROM_SESSION, FROM_ADMIN_FILE = "TESSERA_API_TOKEN", "session", "admin token file"


@dataclass(frozen=True)
class Credentials:
    """The bearer token the CLI sends, and where it came from (to explain a refusal)."""

    token: str | None
    source: str


ANONYMOUS = Credentials(None, "none")


def find_credentials(settings: Settings) -> Credentials:
    """TESSERA_API_TOKEN, else the session `tessera login` stored, else the admin's token
    file: an explicit token beats a login, and a login beats the machine's admin."""
    if settings.api_token:
        return Credentials(settings.api_token, FROM_ENV)
    for path, source in (
        (settings.session_token_file, FROM_SESSION),
        (settings.token_file, FROM_ADMIN_FILE),
    ):
        token = path.read_text().strip() if path.exists() else ""
        if token:
            return Credentials(token, source)
    return ANONYMOUS


class ApiClient:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout_s: float = 600.0,
        credentials: Credentials | None = None,
    ) -> None:
        base_url = settings.api_url or f"http://{settings.api_host}:{settings.api_port}"
        self.credentials = credentials or find_credentials(settings)
        token = self.credentials.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the Tessera API at {self._http.base_url}: {exc}; "
                "is `tessera serve` running? (set TESSERA_API_URL otherwise)",
                EXIT_API_UNREACHABLE,
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
                message = body.get("message") or response.text
                code = body.get("code")
            except (ValueError, AttributeError):
                message, code = response.text, None
            if response.status_code == 401 and self.credentials.source == FROM_SESSION:
                raise CliError(
                    f"your session is over ({message}); run `tessera login` again",
                    EXIT_UNAUTHORIZED,
                )
            if code == "quota_exceeded":  # allowed, just not this much more of it
                raise CliError(
                    f"{message}; free some, or ask an admin to raise the project's quota"
                    " (`tessera quota show`)",
                    EXIT_QUOTA_EXCEEDED,
                )
            raise CliError(
                f"{response.status_code}: {message}",
                HTTP_EXIT_CODES.get(response.status_code, EXIT_UNEXPECTED),
            )
        if response.status_code == 204:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def find_vm_id(client: ApiClient, vm: str) -> str:
    """A VM's id from its exact name when unique; anything else is taken as an id."""
    matches = [i for i in client.get("/v1/vms", name=vm, limit=1000)["items"] if i["name"] == vm]
    if len(matches) > 1:
        raise CliError(f"{len(matches)} VMs are named {vm!r}; give the id", EXIT_CONFLICT)
    return str(matches[0]["id"]) if matches else vm


def find_provider_id(client: ApiClient, name_or_id: str) -> str:
    """A pool's id from its name or id."""
    for item in client.get("/v1/providers"):
        if name_or_id in (item["id"], item["name"]):
            return str(item["id"])
    raise CliError(f"provider {name_or_id!r} not found", EXIT_NOT_FOUND)

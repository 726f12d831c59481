"""One settings object for the whole process, read from TESSERA_* environment variables."""

from __future__ import annotations

import hashlib
import socket
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    data_dir: Path = Field(default=Path(".tessera"), description="State: DB, keys, lab.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite default.")
    secret_keys: str | None = Field(
        default=None,
        description="Credential keys as 'id:base64key,...' (newest first); else the key file.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_url: str | None = Field(default=None, description="Where the CLI finds the API.")
    api_token: str | None = Field(default=None, description="Token the CLI sends.")
    watch_enabled: bool = Field(default=True, description="Run inventory watchers in-process.")
    resync_interval_s: float = Field(default=600.0, ge=5.0)
    cpu_allocation_ratio: float = Field(
        default=4.0, gt=0, le=100, description="vCPUs the scheduler may promise per core."
    )
    ram_allocation_ratio: float = Field(
        default=1.0, gt=0, le=100, description="RAM overcommit; 1.0 promises only what exists."
    )
    disk_allocation_ratio: float = Field(
        default=1.0, gt=0, le=100, description="Datastore overcommit for thin disks."
    )
    executor_id: str | None = Field(
        default=None,
        description="This worker's DBOS executor id; default hostname + a digest of the data dir.",
    )
    run_tasks: bool = Field(
        default=True,
        description="Run the task engine here; false: only enqueue (an API before workers).",
    )
    worker_heartbeat_s: float = Field(
        default=5.0, gt=0, le=60, description="How often a worker beats and sweeps."
    )
    worker_timeout_s: float = Field(
        default=15.0, gt=0, le=3600, description="Silence after which a worker's tasks move."
    )
    task_database_url: str | None = Field(
        default=None,
        description="DBOS system database; default the PostgreSQL database, else SQLite.",
    )
    provider_concurrency: int = Field(
        default=4, ge=1, le=64, description="Tasks running at once on one provider."
    )
    task_retry_attempts: int = Field(
        default=4, ge=1, le=20, description="Tries of a step failing with a transient fault."
    )
    task_retry_interval_s: float = Field(
        default=2.0, gt=0, le=300, description="First wait between tries; doubles each time."
    )
    task_pause_after_step: str | None = Field(
        default=None,
        description="Test hook: hang after this step's side effect, before its checkpoint.",
    )
    session_ttl_s: float = Field(
        default=3600.0, ge=60, le=86400, description="Life of a portal session token."
    )
    api_token_max_days: int = Field(
        default=365, ge=1, le=3650, description="Longest life an API token may ask for."
    )
    login_max_failures: int = Field(
        default=5, ge=1, le=100, description="Failed logins in a row that lock an account."
    )
    login_lockout_s: float = Field(
        default=900.0, ge=1, le=86400, description="How long a locked account stays locked."
    )
    login_attempts_per_minute: int = Field(
        default=20, ge=1, le=10000, description="Login attempts one source address may make."
    )
    ldap_url: str | None = Field(
        default=None,
        description="ldaps://host or ldap://host:port: turns on logins checked by the directory.",
    )
    ldap_domain: str = Field(default="default", description="The domain the directory serves.")
    ldap_user_dn_template: str | None = Field(
        default=None, description="A user's DN, as 'uid={user},ou=people,dc=example,dc=org'."
    )
    ldap_search_base: str | None = Field(
        default=None, description="Else: where to search for the user's entry."
    )
    ldap_user_attribute: str = Field(default="uid", description="The login name's attribute.")
    ldap_user_filter: str = Field(
        default="", description="Extra search condition, as '(objectClass=person)'."
    )
    ldap_bind_dn: str | None = Field(
        default=None, description="Account the search binds as; anonymous when unset."
    )
    ldap_bind_password: SecretStr | None = None
    ldap_ca_file: Path | None = Field(
        default=None, description="CA certificates for ldaps://; default: the system's."
    )
    ldap_timeout_s: int = Field(default=5, ge=1, le=60, description="Per directory call.")
    network_node: Literal["local"] = Field(
        default="local",
        description="Where routers run: 'local', the control-plane machine itself.",
    )
    network_node_ovsdb: str = Field(
        default="unix:/run/openvswitch/db.sock",
        description="The network node's Open vSwitch database (its bridges carry routers).",
    )
    network_node_netns: str | None = Field(
        default=None, description="The namespace that switch runs in; unset: the node's own."
    )

    @model_validator(mode="after")
    def _ldap_finds_users(self) -> Settings:
        if self.ldap_url and not (self.ldap_user_dn_template or self.ldap_search_base):
            raise ValueError(
                "TESSERA_LDAP_URL needs TESSERA_LDAP_USER_DN_TEMPLATE or TESSERA_LDAP_SEARCH_BASE"
            )
        return self

    @cached_property
    def resolved_executor_id(self) -> str:
        """Stable across restarts (DBOS recovers a worker's own workflows by this id) and
        unique per host and data dir."""
        if self.executor_id:
            return self.executor_id
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:10]
        return f"{socket.gethostname()}-{digest}"

    @cached_property
    def resolved_task_database_url(self) -> str:
        """DBOS's tables: in the PostgreSQL database (their own `dbos` schema) when Tessera
        uses one, else a SQLite file of their own next to tessera.db."""
        if self.task_database_url:
            return self.task_database_url
        if self.resolved_database_url.startswith("postgresql"):
            return self.resolved_database_url
        return f"sqlite:///{(self.data_dir / 'tasks.sqlite').resolve()}"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tessera.db').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.keys"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def admin_password_file(self) -> Path:
        return self.data_dir / "admin.password"

    @property
    def session_token_file(self) -> Path:
        """Where `tessera login` keeps its session token (0600) for the CLI."""
        return self.data_dir / "session.token"

    @property
    def lab_dir(self) -> Path:
        return self.data_dir / "lab"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir

"""One settings object for the whole process, read from TESSERA_* environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
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
    def lab_dir(self) -> Path:
        return self.data_dir / "lab"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir

"""LDAP as an identity backend: a directory user proves their password by binding to the
directory as themselves, so Tessera never holds a copy of it.

The user's entry is found from a DN template (`uid={user},ou=people,...`) or, for
directories whose DNs do not follow the login name, by a search under a base (bound as
a service account, or anonymously). Only simple binds with a non-empty password are
tried: an empty one would be an "unauthenticated bind", which servers accept.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from tessera.config import Settings
from tessera.errors import UnavailableError

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = 49


@dataclass(frozen=True)
class DirectoryUser:
    """A user the directory vouched for: `name` as the directory spells it."""

    dn: str
    name: str
    display_name: str
    email: str


def authenticate(settings: Settings, user: str, password: str) -> DirectoryUser | None:
    """The directory's user when `password` binds as `user`; None when the name or the
    password is wrong (the two are not told apart). UnavailableError when the directory
    cannot be reached or misbehaves: that is no wrong password, so it must not count."""
    if not settings.ldap_url or not password:
        return None
    ca_file = str(settings.ldap_ca_file) if settings.ldap_ca_file else None
    server = Server(
        settings.ldap_url,
        connect_timeout=settings.ldap_timeout_s,
        get_info="NO_INFO",
        tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file),
    )
    try:
        dn = _user_dn(settings, server, user)
        if dn is None:
            return None
        with _bound(settings, server, dn, password, service=False) as conn:
            return _entry(settings, conn, dn, user) if conn is not None else None
    except LDAPException as exc:
        log.warning("LDAP directory %s failed: %s", settings.ldap_url, exc)
        raise UnavailableError("the user directory cannot be reached", retry_after_s=30) from None


@contextmanager
def _bound(
    settings: Settings, server: Server, dn: str | None, password: str | None, *, service: bool
) -> Iterator[Connection | None]:
    """A connection bound as `dn`, or None when a user's credentials are wrong; a
    service account that cannot bind, or any other refusal, is the directory failing."""
    conn = Connection(
        server,
        user=dn,
        password=password,
        read_only=True,
        auto_referrals=False,  # a referral must not send the password to another host
        receive_timeout=settings.ldap_timeout_s,
    )
    try:
        if conn.bind():
            yield conn
        elif service or conn.result.get("result") != INVALID_CREDENTIALS:
            log.warning("LDAP bind as %s refused: %s", dn or "anonymous", conn.result)
            raise UnavailableError("the user directory refused a bind", retry_after_s=30)
        else:
            yield None
    finally:
        conn.unbind()


def _user_dn(settings: Settings, server: Server, user: str) -> str | None:
    """The DN to bind as: the template filled with the escaped name, else the one entry
    the search finds (none, or several, is an unknown user)."""
    if settings.ldap_user_dn_template:
        return settings.ldap_user_dn_template.format(user=escape_rdn(user))
    secret = settings.ldap_bind_password
    password = secret.get_secret_value() if secret else None
    with _bound(settings, server, settings.ldap_bind_dn, password, service=True) as conn:
        assert conn is not None  # a service account's refusal has raised
        base = settings.ldap_search_base or ""  # Settings checks a template or a base is set
        query = f"(&({settings.ldap_user_attribute}={escape_filter_chars(user)})"
        query += f"{settings.ldap_user_filter})"
        conn.search(base, query, SUBTREE, attributes=[], size_limit=2)
        if len(conn.entries) != 1:
            return None
        found: str = conn.entries[0].entry_dn
        return found


def _entry(settings: Settings, conn: Connection, dn: str, user: str) -> DirectoryUser:
    """The bound user's own entry: the name as the directory spells it (a directory
    matches names regardless of case, so "Lena" and "lena" are one person), and their
    display name and e-mail for the local record."""
    attribute = settings.ldap_user_attribute
    conn.search(dn, "(objectClass=*)", BASE, attributes=[attribute, "cn", "displayName", "mail"])
    if not conn.entries:
        return DirectoryUser(dn=dn, name=user, display_name="", email="")
    values = conn.entries[0].entry_attributes_as_dict

    def first(name: str) -> str:
        found = values.get(name) or [""]
        return str(found[0])

    return DirectoryUser(
        dn=dn,
        name=first(attribute) or user,
        display_name=first("displayName") or first("cn"),
        email=first("mail"),
    )

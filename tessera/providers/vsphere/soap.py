"""Raw SOAP for the bulk PropertyCollector calls.

pyvmomi needs ~15x longer to deserialize a 10,000-VM RetrievePropertiesEx answer than the
bytes take to arrive, so the bulk calls (RetrievePropertiesEx, ContinueRetrievePropertiesEx,
CreateFilter, WaitForUpdatesEx) are written and read here with lxml, reusing the session
cookie pyvmomi got at login. Everything else stays on pyvmomi.
"""

from __future__ import annotations

import http.client
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from tessera.providers.faults import ProviderError
from tessera.providers.vsphere.faults import from_fault_name, translate

VIM = "{urn:vim25}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
SOAPENV = "{http://schemas.xmlsoap.org/soap/envelope/}"

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<soapenv:Body><{method} xmlns="urn:vim25">{body}</{method}></soapenv:Body>'
    "</soapenv:Envelope>"
)
_TOKEN = re.compile(rb"<(?:\w+:)?token>([^<]+)</(?:\w+:)?token>")


@dataclass(frozen=True, slots=True)
class MoRef:
    type: str
    value: str

    def xml(self, tag: str) -> str:
        return f'<{tag} type="{escape(self.type)}">{escape(self.value)}</{tag}>'


def filter_spec_xml(view: MoRef, properties: Mapping[str, Sequence[str]]) -> str:
    """A PropertyFilterSpec reading `properties` of every object in a ContainerView."""
    prop_sets = "".join(
        f"<propSet><type>{escape(kind)}</type>"
        + "".join(f"<pathSet>{escape(p)}</pathSet>" for p in paths)
        + "</propSet>"
        for kind, paths in properties.items()
    )
    return (
        f"{prop_sets}<objectSet>{view.xml('obj')}<skip>true</skip>"
        '<selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type>'
        "<path>view</path><skip>false</skip></selectSet></objectSet>"
    )


class _BufferedResponse(http.client.HTTPResponse):
    """Reads the socket through a 1 MiB buffer: a 7 MB page arrives in thousands of small
    chunks, and every read from the socket is a trip through the GIL."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = sock.makefile("rb", buffering=1 << 20)


class SoapClient:
    """One HTTP connection speaking vim25 SOAP with an existing session cookie."""

    def __init__(
        self,
        url: str,
        cookie: str,
        soap_action: str,
        ssl_context: ssl.SSLContext | None,
        timeout_s: float,
        secret: str | None,
    ) -> None:
        parts = urlsplit(url)
        self._path = parts.path or "/sdk"
        self._headers = {
            "Cookie": cookie,
            "SOAPAction": soap_action,
            "Content-Type": "text/xml; charset=utf-8",
        }
        self._secret = secret
        host = parts.hostname or "localhost"
        self._conn: http.client.HTTPConnection
        if parts.scheme == "https":
            self._conn = http.client.HTTPSConnection(
                host, parts.port or 443, timeout=timeout_s, context=ssl_context
            )
        else:
            self._conn = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout_s)
        self._conn.response_class = _BufferedResponse

    def close(self) -> None:
        self._conn.close()

    def send(self, method: str, body: str) -> None:
        """POST one call without waiting for the answer (see receive)."""
        payload = _ENVELOPE.format(method=method, body=body).encode()
        try:
            self._conn.request("POST", self._path, payload, self._headers)
        except Exception as exc:
            self._conn.close()
            raise translate(exc, self._secret) from None

    def receive(self) -> bytes:
        """The answer to the last send(); SOAP faults become ProviderErrors."""
        try:
            resp = self._conn.getresponse()
            data = resp.read()
        except Exception as exc:
            self._conn.close()
            raise translate(exc, self._secret) from None
        if resp.status == 500:
            raise self._fault(data)
        if resp.status != 200:
            raise ProviderError(f"vCenter answered HTTP {resp.status}")
        return data

    def call_raw(self, method: str, body: str) -> bytes:
        """One call, answered as bytes."""
        self.send(method, body)
        return self.receive()

    def call(self, method: str, body: str) -> etree._Element:
        """Like call_raw, returning the parsed `returnval` parent element."""
        root = etree.fromstring(self.call_raw(method, body))
        return root[0][0]  # Envelope/Body/<Method>Response

    def _fault(self, data: bytes) -> ProviderError:
        try:
            root = etree.fromstring(data)
        except etree.XMLSyntaxError:
            return ProviderError("vCenter answered with an unreadable fault")
        fault = root.find(f"{SOAPENV}Body/{SOAPENV}Fault")
        if fault is None:
            return ProviderError("vCenter answered HTTP 500 without a fault")
        message = fault.findtext("faultstring") or ""
        detail = fault.find("detail")
        name = "SystemError"
        if detail is not None and len(detail):
            name = detail[0].get(XSI_TYPE) or etree.QName(detail[0]).localname.removesuffix("Fault")
        return from_fault_name(name.rpartition(":")[2], message, self._secret)


def token_of(page: bytes) -> str | None:
    """The paging token of a RetrievePropertiesEx answer, found without parsing it: the
    WSDL puts it before the objects, so only the head of the page is searched."""
    match = _TOKEN.search(page, 0, 1024)
    return match.group(1).decode() if match else None

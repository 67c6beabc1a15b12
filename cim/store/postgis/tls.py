"""TLS for the connections of the PostGIS store: ``sslmode`` (and its certificates) in one URL.

Every connection the store opens — the psycopg pool (reads, edits, COPY of a publish, tile geometry)
and the SQLAlchemy engine (migrations, the publish and tile locks, releases) — is made from the one
URL :func:`connection_url` returns, so a TLS requirement reaches them all.

The URL's own query string wins (``postgresql://u@host/db?sslmode=verify-full&sslrootcert=/etc/ca.pem``);
what it does not say is taken from the environment:

- ``CIM_PG_SSLMODE``: ``disable``, ``allow``, ``prefer``, ``require``, ``verify-ca`` or ``verify-full``
  (libpq's meanings; ``verify-full`` checks the certificate chain and the host name);
- ``CIM_PG_SSLROOTCERT``: the CA certificate(s) the server's certificate must chain to (verify-*);
- ``CIM_PG_SSLCERT`` / ``CIM_PG_SSLKEY``: a client certificate, when the server asks for one.

libpq's own ``PGSSLMODE`` & co. still apply below these when neither is set.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cim.errors import StoreError

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: connection parameter ← environment variable
ENVIRONMENT = {
    "sslmode": "CIM_PG_SSLMODE",
    "sslrootcert": "CIM_PG_SSLROOTCERT",
    "sslcert": "CIM_PG_SSLCERT",
    "sslkey": "CIM_PG_SSLKEY",
}


def connection_url(url: str) -> str:
    """``url`` with the TLS parameters of the environment added where the URL names none;
    StoreError for an unknown ``sslmode`` or a certificate file that does not exist."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {name for name, _ in query}
    for name, variable in ENVIRONMENT.items():
        value = os.environ.get(variable)
        if value and name not in given:
            query.append((name, value))
    params = dict(query)
    mode = params.get("sslmode")
    if mode is not None and mode not in SSLMODES:
        raise StoreError(f"unknown sslmode {mode!r} (URL or CIM_PG_SSLMODE): use one of {', '.join(SSLMODES)}")
    for name in ("sslrootcert", "sslcert", "sslkey"):
        path = params.get(name)
        if path and path != "system" and not os.path.isfile(path):
            raise StoreError(f"{name} {path!r} (URL or {ENVIRONMENT[name]}) is not a readable file")
    if not query:
        return url
    return urlunsplit(parts._replace(query=urlencode(query)))


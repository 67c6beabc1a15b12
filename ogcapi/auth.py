"""Bearer tokens (JWT): writes (OGC API - Features Part 4), reads of restricted layers, the admin routes.

A token is verified with PyJWT against the configured public key or JWKS, with algorithm RS256 or
ES256, and must carry the editor role in its role claim. Configuration, from the environment:

- ``CIM_JWT_PUBLIC_KEY`` (PEM text) or ``CIM_JWT_PUBLIC_KEY_FILE`` (path of a PEM file), or
  ``CIM_JWT_JWKS_URL`` (the identity provider's JWKS; keys chosen by the token's ``kid``);
- ``CIM_JWT_AUDIENCE`` / ``CIM_JWT_ISSUER``: checked when set;
- ``CIM_JWT_ROLE_CLAIM`` (default ``roles``; a dotted path such as ``realm_access.roles`` reaches
  into nested claims) holding a list or a space-separated string; ``CIM_JWT_EDITOR_ROLE`` (default
  ``editor``); ``CIM_JWT_READER_ROLE`` (default ``reader``: reads of restricted layers whose catalog
  entry names no ``read_role``, ogcapi/access.py) and ``CIM_JWT_ADMIN_ROLE`` (default ``admin``: the
  audit log, ogcapi/admin_routes.py); ``CIM_JWT_WARNING_ROLE`` (default ``warning-publisher``: POST
  /warnings, ogcapi/warnings_routes.py).

The algorithm follows the key, never the token: an RSA key verifies RS256 only, a P-256 EC key ES256
only (a JWKS key: its own ``alg`` if it names one, else its type). A token signed otherwise — ``alg:
none``, HS256 with the public key as the secret, ES256 sent to an RSA key or the reverse — and any token
that cannot be read or verified, or whose key the JWKS does not hold, is refused with 401 and
``WWW-Authenticate: Bearer``; a valid token without the role: 403. With nothing configured every
request that needs a token is refused with 401 (and the message says why). A key in the environment
that is not an RSA or P-256 public key (PEM, or a certificate) stops the server at start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.responses import Response
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from cim.errors import ConfigError
from ogcapi.errors import ogc_exception

ALGORITHMS = ("RS256", "ES256")
REALM = "cim-basemap"
#: seconds the server waits for the identity provider's JWKS
JWKS_TIMEOUT = 5


class AuthError(Exception):
    """A refused write: ``status`` (401/403), the message, and the WWW-Authenticate challenge."""

    def __init__(self, status: int, message: str, error: str) -> None:
        super().__init__(message)
        self.status = status
        detail = message.replace('"', "'")
        self.challenge = f'Bearer realm="{REALM}", error="{error}", error_description="{detail}"'

    def response(self) -> Response:
        """The refusal: an OGC exception document with the ``WWW-Authenticate`` challenge."""
        response = ogc_exception(self.status, str(self))
        response.headers["WWW-Authenticate"] = self.challenge
        return response


@dataclass
class JWTAuth:
    """Verifies bearer tokens of editors."""

    key: Any = None
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None
    role_claim: str = "roles"
    editor_role: str = "editor"
    reader_role: str = "reader"
    admin_role: str = "admin"
    #: the role that may publish warnings (POST /warnings, ogcapi/warnings_routes.py)
    warning_role: str = "warning-publisher"
    _jwks: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.key, (str, bytes)):
            self.key = public_key(self.key)

    @classmethod
    def from_environment(cls) -> JWTAuth | None:
        """The configuration in the environment; None when no key or JWKS is configured."""
        env = os.environ
        key: str | None = env.get("CIM_JWT_PUBLIC_KEY") or None
        if key is None and env.get("CIM_JWT_PUBLIC_KEY_FILE"):
            with open(env["CIM_JWT_PUBLIC_KEY_FILE"], encoding="ascii") as fh:
                key = fh.read()
        jwks_url = env.get("CIM_JWT_JWKS_URL") or None
        if key is None and jwks_url is None:
            return None
        return cls(
            key=key,
            jwks_url=jwks_url,
            audience=env.get("CIM_JWT_AUDIENCE") or None,
            issuer=env.get("CIM_JWT_ISSUER") or None,
            role_claim=env.get("CIM_JWT_ROLE_CLAIM") or "roles",
            editor_role=env.get("CIM_JWT_EDITOR_ROLE") or "editor",
            reader_role=env.get("CIM_JWT_READER_ROLE") or "reader",
            admin_role=env.get("CIM_JWT_ADMIN_ROLE") or "admin",
            warning_role=env.get("CIM_JWT_WARNING_ROLE") or "warning-publisher",
        )

    def _signing_key(self, token: str) -> tuple[Any, tuple[str, ...]]:
        """The key that verifies ``token`` and the algorithms it may be used with."""
        if self.key is not None:
            return self.key, key_algorithms(self.key)
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(self.jwks_url or "", cache_keys=True, timeout=JWKS_TIMEOUT)
        jwk = self._jwks.get_signing_key_from_jwt(token)
        # the JWK's own alg (or the one its type implies) narrows what its key type allows
        return jwk.key, tuple(a for a in key_algorithms(jwk.key) if a == jwk.algorithm_name)

    def claims(self, authorization: str | None, needed_for: str) -> dict[str, Any]:
        """The verified claims of the bearer token in ``authorization`` (the header); AuthError (401)
        naming what is wrong. ``needed_for`` completes "a bearer token is required to ..."."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, f"a bearer token is required to {needed_for}", "invalid_request")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            key, algorithms = self._signing_key(token)
            alg = header.get("alg")
            if alg not in algorithms:
                accepted = " or ".join(algorithms) or "no algorithm"
                raise AuthError(401, f"invalid token: signed with {alg!r}; this server's key takes {accepted}", "invalid_token")
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWKClientError as exc:
            raise AuthError(401, f"cannot find the token's key: {exc}", "invalid_token") from None
        except jwt.PyJWTError as exc:  # InvalidTokenError, InvalidKeyError, ...
            raise AuthError(401, f"invalid token: {exc or type(exc).__name__}", "invalid_token") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a header or key the libraries choke on
            raise AuthError(401, f"invalid token: cannot be read ({type(exc).__name__})", "invalid_token") from None
        if not isinstance(claims.get("sub"), (str, int)):
            raise AuthError(401, "invalid token: 'sub' must be a string", "invalid_token")
        return claims

    def require(self, authorization: str | None, role: str, needed_for: str) -> str:
        """The ``sub`` of a valid token carrying ``role``; AuthError (401, or 403 without the role)."""
        claims = self.claims(authorization, needed_for)
        if role not in _roles(claims, self.role_claim):
            raise AuthError(403, f"the token lacks the {role!r} role", "insufficient_scope")
        return str(claims["sub"])

    def editor(self, authorization: str | None) -> str:
        """The ``sub`` of the editor presenting ``authorization`` (the header); raises AuthError."""
        return self.require(authorization, self.editor_role, "edit")

    def caller(self, authorization: str | None) -> tuple[str | None, tuple[str, ...]]:
        """The ``sub`` and roles of a valid token in ``authorization``; (None, ()) without a valid one."""
        if not authorization:
            return None, ()
        try:
            claims = self.claims(authorization, "")
        except AuthError:
            return None, ()
        return str(claims["sub"]), tuple(_roles(claims, self.role_claim))

    def subject(self, authorization: str | None) -> str | None:
        """The ``sub`` of a valid token in ``authorization``, None without one (for the audit log)."""
        if not authorization:
            return None
        try:
            return str(self.claims(authorization, "")["sub"])
        except AuthError:
            return None


def public_key(pem: str | bytes) -> Any:
    """The RSA or P-256 public key in ``pem`` (a public key or a certificate); ConfigError otherwise."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        if b"BEGIN CERTIFICATE" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"CIM_JWT_PUBLIC_KEY(_FILE) is not a PEM public key or certificate: {exc}") from None
    if not key_algorithms(key):
        raise ConfigError("CIM_JWT_PUBLIC_KEY(_FILE) must be an RSA or a P-256 (ES256) public key")
    return key


def key_algorithms(key: Any) -> tuple[str, ...]:
    """The algorithms ``key`` verifies: RS256 for RSA, ES256 for P-256, nothing else."""
    if isinstance(key, rsa.RSAPublicKey):
        return ("RS256",)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return ("ES256",)
    return ()


def _roles(claims: dict[str, Any], path: str) -> list[str]:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def check(auth: JWTAuth | None, authorization: str | None) -> str:
    """The editor's ``sub``; AuthError when writes are refused (also when none are configured)."""
    return configured(auth, "editing").editor(authorization)


def configured(auth: JWTAuth | None, what: str) -> JWTAuth:
    """``auth``; AuthError (401) saying ``what`` needs tokens the server cannot verify, when None."""
    if auth is None:
        raise AuthError(
            401,
            f"{what} needs a token and no key is configured on this server (set CIM_JWT_PUBLIC_KEY, "
            "CIM_JWT_PUBLIC_KEY_FILE or CIM_JWT_JWKS_URL)",
            "invalid_token",
        )
    return auth

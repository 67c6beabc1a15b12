"""Bearer tokens (JWT) for the write operations of OGC API - Features Part 4; reads stay public.

A token is verified with PyJWT against the configured public key or JWKS, with algorithm RS256 or
ES256, and must carry the editor role in its role claim. Configuration, from the environment:

- ``CIM_JWT_PUBLIC_KEY`` (PEM text) or ``CIM_JWT_PUBLIC_KEY_FILE`` (path of a PEM file), or
  ``CIM_JWT_JWKS_URL`` (the identity provider's JWKS; keys chosen by the token's ``kid``);
- ``CIM_JWT_AUDIENCE`` / ``CIM_JWT_ISSUER``: checked when set;
- ``CIM_JWT_ROLE_CLAIM`` (default ``roles``; a dotted path such as ``realm_access.roles`` reaches
  into nested claims) holding a list or a space-separated string; ``CIM_JWT_EDITOR_ROLE`` (default
  ``editor``).

No token or an invalid one: 401 with ``WWW-Authenticate: Bearer``; a valid token without the role: 403.
With nothing configured every write is refused with 401 (and the message says why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import jwt

ALGORITHMS = ("RS256", "ES256")
REALM = "cim-basemap"


class AuthError(Exception):
    """A refused write: ``status`` (401/403), the message, and the WWW-Authenticate challenge."""

    def __init__(self, status: int, message: str, error: str) -> None:
        super().__init__(message)
        self.status = status
        detail = message.replace('"', "'")
        self.challenge = f'Bearer realm="{REALM}", error="{error}", error_description="{detail}"'


@dataclass
class JWTAuth:
    """Verifies bearer tokens of editors."""

    key: Any = None
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None
    role_claim: str = "roles"
    editor_role: str = "editor"
    _jwks: Any = field(default=None, repr=False)

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
        )

    def _signing_key(self, token: str) -> Any:
        if self.key is not None:
            return self.key
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(self.jwks_url or "", cache_keys=True)
        return self._jwks.get_signing_key_from_jwt(token).key

    def editor(self, authorization: str | None) -> str:
        """The ``sub`` of the editor presenting ``authorization`` (the header); raises AuthError."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "a bearer token is required to edit", "invalid_request")
        token = token.strip()
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token),
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWKClientError as exc:
            raise AuthError(401, f"cannot find the token's key: {exc}", "invalid_token") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, f"invalid token: {exc}", "invalid_token") from None
        if self.editor_role not in _roles(claims, self.role_claim):
            raise AuthError(403, f"the token lacks the {self.editor_role!r} role", "insufficient_scope")
        return str(claims["sub"])


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
    if auth is None:
        raise AuthError(
            401,
            "editing is not configured on this server (set CIM_JWT_PUBLIC_KEY, CIM_JWT_PUBLIC_KEY_FILE or CIM_JWT_JWKS_URL)",
            "invalid_token",
        )
    return auth.editor(authorization)

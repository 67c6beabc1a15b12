"""Hostile bearer tokens: every token the server cannot verify with its own key and algorithm is a 401
with ``WWW-Authenticate: Bearer`` — never a 500 — on servers configured with an RSA key, a P-256 key
and a JWKS (served here on a local port). A control token with the right key gets past the check
(the write then stops at its empty body: 400), so the refusals below are the token's doing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from typing import Any, Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from cim.errors import ConfigError
from support.server import free_port

WRITE = "/collections/landuse/items"  # landuse: the demo's editable layer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem(private_key: Any) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "mallory", "roles": ["editor"], "exp": int(time.time()) + 600, **extra}


def token(key: Any, algorithm: str, headers: dict[str, Any] | None = None, **extra: Any) -> str:
    return jwt.encode(claims(**extra), key, algorithm=algorithm, headers=headers)


def handmade(header: dict[str, Any], payload: dict[str, Any], sign: Any = lambda _: b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())


def client_for(store_url: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> TestClient:
    from ogcapi.app import create_app

    for name in ("CIM_JWT_PUBLIC_KEY", "CIM_JWT_PUBLIC_KEY_FILE", "CIM_JWT_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return TestClient(create_app(store_url, server_url="http://testserver"))


def refused(client: TestClient, authorization: str) -> None:
    response = client.post(WRITE, content=b"", headers={"Authorization": authorization, "Content-Type": "application/geo+json"})
    assert response.status_code == 401, (authorization[:80], response.status_code, response.text[:300])
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="cim-basemap"')
    assert response.json()["code"] and "Traceback" not in response.text


def accepted_control(client: TestClient, authorization: str) -> None:
    response = client.post(WRITE, content=b"", headers={"Authorization": authorization, "Content-Type": "application/geo+json"})
    assert response.status_code == 400 and "no body" in response.json()["description"]


def rsa_forgeries() -> dict[str, str]:
    public_pem = pem(RSA_KEY).encode()
    return {
        "ES256 to an RSA key": token(EC_KEY, "ES256"),
        "alg none": handmade({"alg": "none", "typ": "JWT"}, claims()),
        "alg None spelled oddly": handmade({"alg": "None", "typ": "JWT"}, claims()),
        "HS256 with the public key as secret": handmade(
            {"alg": "HS256", "typ": "JWT"}, claims(), lambda m: hmac.new(public_pem, m, hashlib.sha256).digest()
        ),
        "RS256 by another key": token(OTHER_RSA_KEY, "RS256"),
        "RS384 with the right key": token(RSA_KEY, "RS384"),
        "PS256 with the right key": token(RSA_KEY, "PS256"),
        "own key embedded in the header": token(OTHER_RSA_KEY, "RS256", headers={"jwk": {"kty": "RSA"}}),
        "no alg": handmade({"typ": "JWT"}, claims(), lambda m: b"x" * 256),
        "alg not a string": handmade({"alg": ["RS256"]}, claims(), lambda m: b"x" * 256),
        "header a list": f"{b64(b'[1,2]')}.{b64(json.dumps(claims()).encode())}.{b64(b'x')}",
        "header not json": f"{b64(b'{{{')}.{b64(json.dumps(claims()).encode())}.{b64(b'x')}",
        "payload not json": f"{b64(json.dumps({'alg': 'RS256'}).encode())}.{b64(b'nope')}.{b64(b'x')}",
        "not base64": "!!!.???.***",
        "two parts": "abc.def",
        "empty parts": "..",
        "one word": "garbage",
        "huge": "a" * 6000 + "." + "b" * 6000 + "." + "c",
        "sub an object": token(RSA_KEY, "RS256", sub={"id": 1}),
        "no exp": jwt.encode({"sub": "mallory", "roles": ["editor"]}, RSA_KEY, algorithm="RS256"),
        "exp not a number": token(RSA_KEY, "RS256", exp="tomorrow"),
    }


@pytest.fixture
def rsa_server(demo_store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with client_for(demo_store_url, monkeypatch, CIM_JWT_PUBLIC_KEY=pem(RSA_KEY)) as client:
        yield client


def test_rsa_server_refuses_every_forgery(rsa_server: TestClient) -> None:
    accepted_control(rsa_server, f"Bearer {token(RSA_KEY, 'RS256')}")
    for name, forged in rsa_forgeries().items():
        refused(rsa_server, f"Bearer {forged}")
    for header in ("Bearer", "Bearer    ", "Basic dXNlcjpwdw==", "bearer.x", "Token abc"):
        refused(rsa_server, header)


def test_ec_server_refuses_rsa_tokens(demo_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with client_for(demo_store_url, monkeypatch, CIM_JWT_PUBLIC_KEY=pem(EC_KEY)) as client:
        accepted_control(client, f"Bearer {token(EC_KEY, 'ES256')}")
        refused(client, f"Bearer {token(RSA_KEY, 'RS256')}")  # the reverse mismatch: 500 before
        refused(client, f"Bearer {token(P384_KEY, 'ES384')}")
        refused(client, f"Bearer {token(ec.generate_private_key(ec.SECP256R1()), 'ES256')}")
        public_pem = pem(EC_KEY).encode()
        refused(client, "Bearer " + handmade({"alg": "HS256"}, claims(), lambda m: hmac.new(public_pem, m, hashlib.sha256).digest()))


@pytest.mark.parametrize(
    "key", ["not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", pem(P384_KEY)]
)
def test_unusable_configured_key_stops_the_server_at_start(demo_store_url: str, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    with pytest.raises(ConfigError, match="CIM_JWT_PUBLIC_KEY"):
        client_for(demo_store_url, monkeypatch, CIM_JWT_PUBLIC_KEY=key)


class JWKSServer:
    """Serves ``document`` (bytes) at /jwks on a local port."""

    def __init__(self) -> None:
        self.document = b"{}"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = server.document
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/jwks"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def jwk_of(private_key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    return {**json.loads(algorithm.to_jwk(private_key.public_key())), "kid": kid, **extra}


def test_jwks_server_refuses_what_its_keys_do_not_verify(demo_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    jwks = JWKSServer()
    try:
        secret = b"shared-secret-of-helper-h6-32-bytes!"
        jwks.document = json.dumps({"keys": [
            jwk_of(RSA_KEY, "rsa-1"),
            jwk_of(EC_KEY, "ec-1"),
            jwk_of(RSA_KEY, "rsa-ps", alg="PS256"),
            {"kty": "oct", "kid": "oct-1", "k": b64(secret)},
        ]}).encode()  # fmt: skip
        with client_for(demo_store_url, monkeypatch, CIM_JWT_JWKS_URL=jwks.url) as client:
            accepted_control(client, f"Bearer {token(RSA_KEY, 'RS256', headers={'kid': 'rsa-1'})}")
            accepted_control(client, f"Bearer {token(EC_KEY, 'ES256', headers={'kid': 'ec-1'})}")
            refused(client, f"Bearer {token(RSA_KEY, 'RS256', headers={'kid': 'unknown'})}")
            refused(client, f"Bearer {token(RSA_KEY, 'RS256')}")  # no kid
            refused(client, f"Bearer {token(EC_KEY, 'ES256', headers={'kid': 'rsa-1'})}")  # ES256 to the RSA key
            refused(client, f"Bearer {token(RSA_KEY, 'RS256', headers={'kid': 'ec-1'})}")  # RS256 to the EC key
            refused(client, f"Bearer {token(RSA_KEY, 'RS256', headers={'kid': 'rsa-ps'})}")  # the JWK says PS256
            refused(client, f"Bearer {token(secret, 'HS256', headers={'kid': 'oct-1'})}")  # symmetric keys: never
            refused(client, f"Bearer {token(OTHER_RSA_KEY, 'RS256', headers={'kid': 'rsa-1'})}")
            refused(client, "Bearer " + handmade({"alg": "RS256", "kid": ["rsa-1"]}, claims(), lambda m: b"x" * 256))
        for document in (b"not json", b'{"keys": "none"}', b'{"keys": [{"kty": "nonsense", "kid": "rsa-1"}]}', b"[]"):
            jwks.document = document
            with client_for(demo_store_url, monkeypatch, CIM_JWT_JWKS_URL=jwks.url) as client:
                refused(client, f"Bearer {token(RSA_KEY, 'RS256', headers={'kid': 'rsa-1'})}")
    finally:
        jwks.close()
    # the identity provider unreachable
    with client_for(demo_store_url, monkeypatch, CIM_JWT_JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks") as client:
        refused(client, f"Bearer {token(RSA_KEY, 'RS256', headers={'kid': 'rsa-1'})}")

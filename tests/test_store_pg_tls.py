"""TLS to PostgreSQL: ``sslmode`` from the store URL or ``CIM_PG_SSLMODE`` reaches every connection
the PostGIS store opens (pool and SQLAlchemy engine, a publish's COPY included); a server certificate
that does not chain to the given root is refused with a clear StoreError.

The local server is set up for TLS by scripts/test (a self-signed certificate in its data directory)."""

from __future__ import annotations

import datetime
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cim.errors import StoreError
from cim.store import LayerData, ReleaseDraft, open_store
from cim.store.postgis.tls import connection_url
from layers.catalog import CATALOG

SSL_OF_BACKEND = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture
def tls_db(new_postgis_db) -> str:  # type: ignore[no-untyped-def]
    url = new_postgis_db()
    with psycopg.connect(url) as conn:
        if conn.execute("SHOW ssl").fetchone()[0] != "on":  # type: ignore[index]
            pytest.fail("PostgreSQL has ssl = off: run ./scripts/test once (it turns TLS on for the tests)")
    return url


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def parcels() -> LayerData:
    frame = gpd.GeoDataFrame(
        {"parcel_id": ["A-1"], "land_use": ["R2"], "area_m2": [10.0], "plot_ratio": [1.0],
         "source": ["survey"], "source_id": ["a1"]},
        geometry=[shapely.MultiPolygon([shapely.box(117.17, 39.14, 117.171, 39.141)])], crs=4326,
    )  # fmt: skip
    return LayerData(CATALOG["parcels"], frame)


def other_ca_certificate(directory: Path) -> Path:
    """A self-signed CA certificate the server's certificate does not chain to."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the cim test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256())
    )  # fmt: skip
    path = directory / "h6-other-ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_sslmode_require_in_the_url_encrypts_every_connection(tls_db: str) -> None:
    with open_store(with_query(tls_db, "sslmode=require")) as store:
        store.publish(ReleaseDraft(layers=[parcels()], srid=4326))  # the engine's lock, the pool's COPY
        assert [i.name for i in store.layers() if not i.spec.live] == ["parcels"]
        with store._pool.connection() as conn:  # type: ignore[attr-defined]
            ssl, version = conn.execute(SSL_OF_BACKEND).fetchone()
        assert ssl is True and version.startswith("TLS")
        with store._engine.connect() as conn:  # type: ignore[attr-defined]
            ssl, _ = conn.exec_driver_sql(SSL_OF_BACKEND).one()
        assert ssl is True
        # nothing of the store's connects in the clear (pg_stat_activity: the store's backends only)
        database = tls_db.rsplit("/", 1)[1]
        with store._pool.connection() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(
                "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = %s",
                (database,),
            ).fetchall()
        assert rows and all(r[0] for r in rows)


def test_sslmode_from_the_environment(tls_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIM_PG_SSLMODE", "require")
    with open_store(tls_db) as store:
        store.publish(ReleaseDraft(layers=[parcels()], srid=4326))
        with store._pool.connection() as conn:  # type: ignore[attr-defined]
            assert conn.execute(SSL_OF_BACKEND).fetchone()[0] is True


def test_plain_connection_without_sslmode_disable(tls_db: str) -> None:
    """The check above can tell: the same server with sslmode=disable is not encrypted."""
    with open_store(with_query(tls_db, "sslmode=disable")) as store:
        store.publish(ReleaseDraft(layers=[parcels()], srid=4326))
        with store._pool.connection() as conn:  # type: ignore[attr-defined]
            assert conn.execute(SSL_OF_BACKEND).fetchone()[0] is False


def test_verify_full_with_a_wrong_root_certificate_is_a_clear_store_error(tls_db: str, tmp_path: Path) -> None:
    root = other_ca_certificate(tmp_path)
    with pytest.raises(StoreError) as caught:
        open_store(with_query(tls_db, f"sslmode=verify-full&sslrootcert={root}"))
    message = str(caught.value)
    assert "cannot connect" in message and "certificate" in message


def test_verify_full_with_the_servers_certificate(tls_db: str) -> None:
    """The test server's self-signed certificate names localhost and 127.0.0.1: verify-full passes."""
    with psycopg.connect(tls_db) as conn:
        crt = Path(conn.execute("SHOW ssl_cert_file").fetchone()[0])  # type: ignore[index]
    with open_store(with_query(tls_db, f"sslmode=verify-full&sslrootcert={crt}")) as store:
        with store._pool.connection() as conn:  # type: ignore[attr-defined]
            assert conn.execute(SSL_OF_BACKEND).fetchone()[0] is True


def test_url_parameters_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIM_PG_SSLMODE", "require")
    assert connection_url("postgresql://u@h/db?sslmode=disable") == "postgresql://u@h/db?sslmode=disable"
    assert connection_url("postgresql://u@h/db") == "postgresql://u@h/db?sslmode=require"


@pytest.mark.parametrize(
    ("url", "said"),
    [("postgresql://u@h/db?sslmode=sometimes", "unknown sslmode 'sometimes'"),
     ("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/h6-ca.pem", "is not a readable file")],
)  # fmt: skip
def test_bad_tls_settings_are_store_errors(url: str, said: str) -> None:
    with pytest.raises(StoreError, match=said):
        open_store(url)

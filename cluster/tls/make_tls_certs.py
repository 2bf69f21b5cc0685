#!/usr/bin/env python
"""Make a private certificate authority and TLS certificates for a Dask cluster (mutual TLS).

    python cluster/tls/make_tls_certs.py DIR [--host 127.0.0.1 --host node01.example.org ...] [--days 365]

writes into DIR (created, mode 0700):

    ca.pem                         the cluster's CA certificate: give it to every node and client
    ca-key.pem                     the CA's private key: keep it offline, it signs new certificates
    scheduler.pem, scheduler-key.pem
    worker.pem,    worker-key.pem
    client.pem,    client-key.pem  for `cusweep run --scheduler tls://...` and other clients
    dask-tls.yaml                  Dask configuration naming these files (cluster/tls/dask-tls.yaml with
                                   DIR filled in): `export DASK_CONFIG=DIR` on every machine instead of
                                   the --tls-* options

Dask uses mutual TLS: every connection presents a certificate signed by the cluster CA, so a process
without one (or with one from another CA) is refused. Dask does not check host names (it sets
``check_hostname = False`` and expects a dedicated CA), but the --host names are written into the
certificates' subjectAltName anyway, so that other TLS tools can check them. Private keys are
written with mode 0600. Requires the ``cryptography`` package (``pip install cryptography``).
Running it again into the same DIR replaces everything: old certificates stop working.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

NODES = ("scheduler", "worker", "client")
#: the Dask configuration template beside this script; its placeholder directory is replaced by DIR
TEMPLATE = Path(__file__).with_name("dask-tls.yaml")
PLACEHOLDER = "/path/to/tls"


def _write(path: Path, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600 if private else 0o644)


def _san(hosts: list[str]):  # noqa: ANN202 (cryptography types are imported lazily)
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def make_certs(
    outdir: str | os.PathLike[str],
    hosts: list[str] | None = None,
    days: int = 365,
    nodes: tuple[str, ...] = NODES,
    ca_name: str = "cusweep dask cluster CA",
) -> dict[str, Path]:
    """Write a CA and one certificate + key per node name into ``outdir``; return {name: path}
    (``ca``, ``ca-key``, and ``NAME`` / ``NAME-key`` for every node)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    hosts = hosts or ["127.0.0.1", "localhost"]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew between nodes
    until = now + dt.timedelta(days=days)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": out / "ca.pem", "ca-key": out / "ca-key.pem"}
    _write(paths["ca"], ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths["ca-key"], pem_key(ca_key), private=True)

    for node in nodes:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dask-{node}")]))
            .issuer_name(ca_subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # every Dask process is both a TLS server and a TLS client (workers talk to each other)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(_san(hosts), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        paths[node] = out / f"{node}.pem"
        paths[f"{node}-key"] = out / f"{node}-key.pem"
        _write(paths[node], cert.public_bytes(serialization.Encoding.PEM))
        _write(paths[f"{node}-key"], pem_key(key), private=True)
    if TEMPLATE.exists() and set(NODES) <= set(nodes):
        paths["dask-tls.yaml"] = out / "dask-tls.yaml"
        text = TEMPLATE.read_text().replace(PLACEHOLDER, str(out.resolve()))
        _write(paths["dask-tls.yaml"], text.encode())
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", metavar="DIR", help="directory for the CA, certificates and keys")
    p.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="host name or IP written into the certificates' subjectAltName (repeatable; "
        "default: 127.0.0.1 and localhost)",
    )
    p.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    args = p.parse_args(argv)
    paths = make_certs(args.outdir, hosts=args.host, days=args.days)
    d = Path(args.outdir).resolve()
    print(f"wrote the CA and scheduler/worker/client certificates to {d}")
    print(
        f"  dask scheduler --protocol tls --host 127.0.0.1 --tls-ca-file {paths['ca']} "
        f"--tls-cert {paths['scheduler']} --tls-key {paths['scheduler-key']}"
    )
    print(
        f"  dask worker tls://127.0.0.1:PORT --host 127.0.0.1 --tls-ca-file {paths['ca']} "
        f"--tls-cert {paths['worker']} --tls-key {paths['worker-key']}"
    )
    print(
        f"  cusweep run SWEEP.toml --scheduler tls://127.0.0.1:PORT --tls-ca-file {paths['ca']} "
        f"--tls-cert {paths['client']} --tls-key {paths['client-key']}"
    )
    if "dask-tls.yaml" in paths:
        print(f"or, with the same certificates from the Dask config: export DASK_CONFIG={d}")
    print(f"keep {paths['ca-key']} private (offline): whoever has it can join the cluster")
    return 0


if __name__ == "__main__":
    sys.exit(main())

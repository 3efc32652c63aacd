"""`edge demo`: an aggregator and an edge worker on this machine, looping the sample videos.

The demo drives the real programs the way an installer would: it generates keys, writes an
aggregator config (embedded SQLite) and an edge config, registers the edge, creates an
operator account, starts `aggregator serve` as a child process and runs the worker in this
process. Nothing is downloaded when the assets are on disk ($STREETWATCH_ASSETS or
../shared/assets); on a connected machine missing files come from the manifests' URLs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from contract.errors import ConfigError, StreetwatchError
from contract.keys import generate
from edge.detectors.catalog import fetch, load_manifest, resolve_model
from edge.paths import assets_dir, project_root

log = logging.getLogger(__name__)

DEMO_USER = "demo"
Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoCamera:
    config: str  # file in sample_videos/
    video: str  # a sample video name, or a generated clip (make_clips.py)
    camera_id: str  # the id in the config
    lon_lat: tuple[float, float]  # where it stands in configs/grid.geojson's sample grid
    generated: bool = False


CAMERAS = (
    DemoCamera(
        "bottle-detection.camera.yaml", "bottle-detection.mp4", "bottle-table", (4.295, 52.085)
    ),
    DemoCamera(
        "crowding.camera.yaml", "crowding.mp4", "sample-square", (4.305, 52.095), generated=True
    ),
    DemoCamera(
        "parking.camera.yaml", "parking.mp4", "sample-kerb", (4.315, 52.105), generated=True
    ),
    DemoCamera(
        "one-by-one-person-detection.camera.yaml",
        "one-by-one-person-detection.mp4",
        "one-by-one",
        (4.285, 52.105),
    ),
)
#: The sample unit grid the demo imports, so the review UI's map has cells and cameras.
DEMO_GRID = "configs/grid.geojson"


@dataclass(frozen=True)
class DemoPorts:
    http: int = 8000
    ingest: int = 5560
    metrics: int = 9108


def samples_dir() -> Path:
    return project_root() / "sample_videos"


def find_video(name: str, demo_dir: Path, say: Say) -> Path | None:
    """A sample video on disk, or downloaded from sample_videos/manifest.yaml's URL."""
    for folder in (demo_dir / "videos", assets_dir() / "videos"):
        if (folder / name).is_file():
            return folder / name
    manifest = yaml.safe_load((samples_dir() / "manifest.yaml").read_text())
    url = (manifest.get("videos", {}).get(name) or {}).get("url")
    if not url:
        return None
    target = demo_dir / "videos" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"downloading {name} from {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            target.with_suffix(".part").write_bytes(resp.read())
    except OSError as exc:
        say(f"  cannot download {name} ({exc}); that camera is left out")
        return None
    target.with_suffix(".part").replace(target)
    return target


def make_generated(demo_dir: Path, say: Say) -> bool:
    """Build the crowding and parking clips from the street photos (sample_videos/make_clips)."""
    out = demo_dir / "videos"
    if all((out / c.video).is_file() for c in CAMERAS if c.generated):
        return True
    res = subprocess.run(
        [sys.executable, str(samples_dir() / "make_clips.py"), str(out)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        say(f"cannot build the generated clips ({res.stderr.strip()}); they are left out")
        return False
    return True


def find_model(demo_dir: Path, say: Say) -> None:
    manifest = load_manifest()
    try:
        resolve_model("yolox_nano", manifest)
    except StreetwatchError:
        say("downloading model yolox_nano")
        fetch("yolox_nano", manifest, project_root() / "models")


def _aggregator(*args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", *args], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise StreetwatchError(f"aggregator {args[0]} {args[1]}: {res.stderr.strip()}")
    return res


def _place_cameras(agg_cfg: Path) -> None:
    """The sample grid and each demo camera on it (the map then shows cells and cameras)."""
    _aggregator("grid", "import", "-c", str(agg_cfg), str(project_root() / DEMO_GRID))
    for cam in CAMERAS:
        lon, lat = cam.lon_lat
        where = ("--lat", str(lat), "--lon", str(lon))
        address = f"demo: {cam.config.removesuffix('.camera.yaml')}"
        _aggregator(
            "cameras", "set", "-c", str(agg_cfg), cam.camera_id, *where, "--address", address
        )


def prepare(demo_dir: Path, ports: DemoPorts, say: Say) -> tuple[Path, Path, str]:
    """Write keys, configs, the edge registration and the account. Returns the aggregator
    config, the edge config and the demo password. Safe to run again on the same folder."""
    demo_dir.mkdir(parents=True, exist_ok=True)
    find_model(demo_dir, say)
    generated = make_generated(demo_dir, say)
    cameras = []
    for cam in CAMERAS:
        video = (demo_dir / "videos" / cam.video) if cam.generated and generated else None
        if not cam.generated:
            video = find_video(cam.video, demo_dir, say)
        if video is None or not video.is_file():
            continue
        cameras.append(
            {
                "config": str(samples_dir() / cam.config),
                "source": {"uri": str(video), "loop": True},
            }
        )
        say(f"camera {cam.config.removesuffix('.camera.yaml')}: {video.name}, looped")
    if not cameras:
        raise ConfigError(
            f"no sample video found in {assets_dir() / 'videos'} and none could be downloaded"
        )
    keys = demo_dir / "keys"
    if not (keys / "aggregator.key").is_file():
        generate(keys, "aggregator")
        generate(keys, "demo-box")
    agg_cfg = demo_dir / "aggregator.yaml"
    agg_cfg.write_text(
        yaml.safe_dump(
            {
                "database_url": "sqlite:///aggregator.sqlite3",
                "ingest": {
                    "bind": f"tcp://127.0.0.1:{ports.ingest}",
                    "server_secret_key": "keys/aggregator.key_secret",
                },
                "http": {"host": "127.0.0.1", "port": ports.http},
                "media": {"dir": "media"},
            },
            sort_keys=False,
        )
    )
    state_file = demo_dir / "demo-state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    if "password" not in state:
        _aggregator("edges", "add", "-c", str(agg_cfg), "demo-box", str(keys / "demo-box.key"))
        _aggregator(
            "edges", "token", "-c", str(agg_cfg), "demo-box", "--out", str(keys / "demo-box.token")
        )
        password = secrets.token_urlsafe(12)
        pw_file = keys / "demo.password"
        pw_file.write_text(password)
        pw_file.chmod(0o600)
        _aggregator("users", "add", "-c", str(agg_cfg), DEMO_USER, "--password-file", str(pw_file))
        _place_cameras(agg_cfg)
        state["password"] = password
        state_file.write_text(json.dumps(state))
        state_file.chmod(0o600)
    edge_cfg = demo_dir / "edge-box.yaml"
    edge_cfg.write_text(
        yaml.safe_dump(
            {
                "edge_id": "demo-box",
                "outbox": {"path": "outbox/outbox.sqlite3"},
                "aggregator": {
                    "endpoint": f"tcp://127.0.0.1:{ports.ingest}",
                    "server_public_key": "keys/aggregator.key",
                    "secret_key": "keys/demo-box.key_secret",
                    "http_url": f"http://127.0.0.1:{ports.http}",
                    "token_file": "keys/demo-box.token",
                },
                "http": {"host": "127.0.0.1", "port": ports.metrics},
                "cameras": cameras,
            },
            sort_keys=False,
        )
    )
    return agg_cfg, edge_cfg, str(state["password"])


def start_aggregator(agg_cfg: Path, ports: DemoPorts, log_path: Path) -> subprocess.Popen[bytes]:
    """`aggregator serve` as a child process; returns once /readyz answers.

    The child gets a process group of its own: Ctrl-C in a terminal and `timeout` signal the
    whole foreground group, and the aggregator must outlive the edge's last uploads, so only
    the demo stops it (stop_aggregator), after the edge. If waiting is interrupted (a signal
    during set-up), the child is stopped before the exception goes on.
    """
    with log_path.open("ab") as out:  # the child holds its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator.cli", "serve", "-c", str(agg_cfg)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            process_group=0,
        )
    try:
        _wait_ready(proc, ports, log_path)
    except BaseException:
        stop_aggregator(proc)
        raise
    return proc


def _wait_ready(proc: subprocess.Popen[bytes], ports: DemoPorts, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise StreetwatchError(f"the aggregator exited at start: {' / '.join(tail)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports.http}/readyz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise StreetwatchError(f"the aggregator did not become ready in 60 s; see {log_path}")


def stop_aggregator(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM (uvicorn's graceful stop), then SIGKILL if it is not gone in timeout_s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("the aggregator did not stop in %.0f s; killing it", timeout_s)
        proc.kill()
        proc.wait()


class SetupInterruptedError(Exception):
    """A stop signal arrived while the demo was still setting up."""


class StopRequest:
    """SIGTERM and SIGINT (Ctrl-C) ask the demo to stop.

    During set-up the first signal raises SetupInterruptedError, so a long step (building clips,
    loading the model) is abandoned. Once the worker exists, a signal only sets its stop
    event: the stop then runs in order, and a repeated signal cannot cut it short (`timeout`
    sends two, one to the demo and one to its process group).
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""
        self._interrupt_setup = True

    def __call__(self, signum: int, _frame: object) -> None:
        first = not self.event.is_set()
        self.event.set()
        if first:
            self.signal_name = signal.Signals(signum).name
            if self._interrupt_setup:
                raise SetupInterruptedError(self.signal_name)

    def hand_over(self, event: threading.Event) -> None:
        """From now on a signal sets `event` (the worker's stop event) and raises nothing."""
        self._interrupt_setup = False
        earlier, self.event = self.event, event
        if earlier.is_set():  # a signal came before the swap
            event.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGTERM and SIGINT while in the block (only the main thread can)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

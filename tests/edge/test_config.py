"""Config files: valid ones load; each mistake is one error naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.config.camera import SourceConfig
from contract.errors import ConfigError
from edge.config import load_camera_config
from edge.detectors.filter import DetectionFilter

GOOD = """\
id: gate-3
name: Gate 3, north side
detector:
  type: onnx
  model: yolox_nano
detection:
  classes: [person, car]
  score_threshold: 0.35
  class_score_thresholds: {car: 0.5}
  min_box_area_px: 200
zones:
  - name: sidewalk
    units: normalized
    polygon: [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
  - name: bay
    units: pixels
    polygon: [[10, 10], [200, 10], [200, 90]]
"""

COCO = ("person", "bicycle", "car")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cam.yaml"
    p.write_text(text)
    return p


def test_good_config_loads(tmp_path: Path) -> None:
    cfg = load_camera_config(write(tmp_path, GOOD))
    assert cfg.id == "gate-3"
    assert cfg.detector.model == "yolox_nano"
    assert [z.name for z in cfg.zones] == ["sidewalk", "bay"]
    assert cfg.zones[1].units == "pixels"
    assert cfg.tracking.lost_track_s == 2.0  # default
    f = DetectionFilter(cfg, COCO, "m")
    assert f.allowed.tolist() == [True, False, True]
    assert f.threshold.tolist() == pytest.approx([0.35, 0.35, 0.5])


def test_every_shipped_config_loads() -> None:
    from aggregator.core.config import load_aggregator_config
    from edge.config.edge_box import load_edge_config

    root = Path(__file__).resolve().parents[2]
    cameras = sorted(root.glob("configs/*.camera.yaml")) + sorted(
        root.glob("sample_videos/*.camera.yaml")
    )
    assert len(cameras) >= 5
    for p in cameras:
        load_camera_config(p)
    assert load_edge_config(root / "configs" / "edge-box.yaml").edge_id == "box-017"
    assert load_aggregator_config(root / "configs" / "aggregator.yaml").ingest.batch_max == 500
    # The city-scale pair (deploy/compose.city.yaml): replicas, and evidence in a bucket.
    city = load_edge_config(root / "configs" / "edge-box.city.yaml")
    assert len(city.aggregator.ingest_endpoints) == 3
    city_aggregator = load_aggregator_config(root / "configs" / "aggregator.city.yaml")
    assert city_aggregator.media.store == "s3"
    assert {p.name for p in (root / "configs").glob("*.yaml")} == {
        "main-st-north.camera.yaml",
        "edge-box.yaml",
        "aggregator.yaml",
        "edge-box.city.yaml",
        "aggregator.city.yaml",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: a\nzones: [\n", r"cam\.yaml:\d+:\d+: invalid YAML"),
        (
            "id: a\ndetection:\n  score_treshold: 0.3\n",
            r"cam\.yaml:3: detection\.score_treshold: unknown key 'score_treshold'",
        ),
        (
            "id: a\nzones:\n  - name: z\n    units: normalized\n    polygon: [[0, 0], [1, 1]]\n",
            r"cam\.yaml:5: zones\[0\]\.polygon: polygon needs at least 3 points, got 2",
        ),
        (
            "id: a\nzones:\n  - name: z\n    units: normalized\n"
            "    polygon: [[0, 0], [300, 0], [0, 200]]\n",
            r"outside 0\.\.1 \(use units: pixels",
        ),
        (
            "id: a\nzones:\n  - name: z\n    polygon: [[0, 0], [1, 0], [0, 1]]\n",
            r"cam\.yaml:3: zones\[0\]\.units: Field required",
        ),
        ("id: a\ndetector:\n  type: tpu\n", r"cam\.yaml:3: detector\.type: Input tag 'tpu'"),
        (
            "id: a\ndetection:\n  score_threshold: 1.5\n",
            r"cam\.yaml:3: detection\.score_threshold: Input should be less than or equal to 1",
        ),
        ("id: Bad Name\n", r"cam\.yaml:1: id: camera id 'Bad Name'"),
        ("- just\n- a list\n", r"cam\.yaml: a camera config must be a YAML mapping"),
    ],
)
def test_bad_config_is_one_line_naming_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_camera_config(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_camera_config(tmp_path / "nope.yaml")


def test_unknown_class_name_points_at_its_line(tmp_path: Path) -> None:
    cfg = load_camera_config(
        write(tmp_path, "id: a\ndetection:\n  classes:\n    - person\n    - carr\n")
    )
    with pytest.raises(
        ConfigError, match=r"cam\.yaml:5: unknown class 'carr' for model m \(did you mean 'car'\?\)"
    ):
        DetectionFilter(cfg, COCO, "m")


RULES = """\
id: a
detection:
  classes: [person, car]
zones:
  - name: z
    units: normalized
    polygon: [[0, 0], [1, 0], [1, 1]]
    rules:
"""


def test_presets_fill_kind_and_defaults_and_keys_override(tmp_path: Path) -> None:
    text = RULES + "      - {preset: crowding, min_count: 12}\n      - {preset: illegal_parking}\n"
    cfg = load_camera_config(write(tmp_path, text))
    crowd, parking = cfg.zones[0].rules
    assert (crowd.kind, crowd.type, crowd.name, crowd.classes) == (
        "count",
        "crowding",
        "crowding",
        ["person"],
    )
    assert crowd.min_count == 12  # type: ignore[union-attr]
    assert parking.kind == "dwell"
    assert parking.dwell_s == 300.0  # type: ignore[union-attr]
    assert parking.classes == ["car", "bus", "truck", "motorcycle"]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "{preset: loitering}",
            r"cam\.yaml:8: zones\[0\]\.rules: unknown preset 'loitering'",
        ),
        (
            "{kind: count, classes: [person], min_count: 0}",
            r"cam\.yaml:9: zones\[0\]\.rules\[0\]\.min_count: Input should be greater",
        ),
        ("{preset: illegal_parking, warn_after_s: 400}", r"warn_after_s must be less than dwell_s"),
        ("{preset: crowding, min_density_per_m2: 2}", r"min_density_per_m2 needs area_m2"),
        ("{kind: teleport, classes: [person]}", r"Input tag 'teleport'"),
        ("{preset: crowding, colour: red}", r"unknown key 'colour'"),
    ],
)
def test_bad_rules(tmp_path: Path, rule: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_camera_config(write(tmp_path, RULES + f"      - {rule}\n"))


def test_rule_class_must_survive_the_detection_filter(tmp_path: Path) -> None:
    from edge.rules.engine import RuleEngine

    cfg = load_camera_config(write(tmp_path, RULES + "      - {preset: litter}\n"))
    coco = ("person", "bicycle", "car", "bottle", "cup", "backpack", "handbag", "suitcase")
    with pytest.raises(
        ConfigError, match=r"cam\.yaml:9: rule class 'bottle' is not in detection\.classes"
    ):
        RuleEngine(cfg, coco, "m")
    cfg = load_camera_config(
        write(tmp_path, RULES + "      - {preset: crowding, classes: [persn]}\n")
    )
    with pytest.raises(
        ConfigError, match=r"cam\.yaml:9: unknown class 'persn'.*did you mean 'person'"
    ):
        RuleEngine(cfg, coco, "m")


_LINK = "edge_id: b\naggregator:\n  server_public_key: a.key\n  secret_key: b.key_secret\n"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("", r"either endpoint \(one ingest\) or endpoints \(replicas\)"),
        (
            "  endpoint: tcp://a:1\n  endpoints: [tcp://b:1]\n",
            r"either endpoint \(one ingest\) or endpoints",
        ),
        ("  endpoints: [tcp://a:1, udp://b:1]\n", r"'udp://b:1' must start with tcp://"),
        ("  endpoints: [tcp://a:1, tcp://a:1]\n", r"endpoints lists an endpoint twice"),
    ],
)
def test_ingest_endpoints_are_one_or_a_list(tmp_path: Path, link: str, expected: str) -> None:
    from edge.config.edge_box import load_edge_config

    path = tmp_path / "box.yaml"
    path.write_text(_LINK + link)
    with pytest.raises(ConfigError, match=expected):
        load_edge_config(path)


def test_ingest_endpoints_list(tmp_path: Path) -> None:
    from edge.config.edge_box import load_edge_config

    path = tmp_path / "box.yaml"
    path.write_text(_LINK + "  endpoints: [tcp://a:1, tcp://b:2]\n")
    assert load_edge_config(path).aggregator.ingest_endpoints == ("tcp://a:1", "tcp://b:2")
    path.write_text(_LINK + "  endpoint: tcp://a:1\n")
    assert load_edge_config(path).aggregator.ingest_endpoints == ("tcp://a:1",)


@pytest.mark.parametrize(
    ("source", "record_uri", "error"),
    [
        ({"uri": "rtsp://cam/main"}, "rtsp://cam/main", None),
        (
            {
                "uri": "rtsp://cam/sub",
                "roles": ["detect"],
                "inputs": [{"uri": "rtsp://cam/main", "roles": ["record"]}],
            },
            "rtsp://cam/main",
            None,
        ),
        ({"uri": "rtsp://cam/sub", "roles": ["detect"]}, None, None),
        ({"uri": "rtsp://cam/main", "roles": ["record"]}, None, "must have the detect role"),
        (
            {"uri": "rtsp://cam/sub", "inputs": [{"uri": "rtsp://cam/main", "roles": ["record"]}]},
            None,
            r"inputs\[0\]\.roles: the record role is already taken",
        ),
        ({"uri": "rtsp://cam/sub", "roles": ["detect", "watch"]}, None, "roles"),
    ],
)
def test_stream_roles(source: dict[str, object], record_uri: str | None, error: str | None) -> None:
    """Frigate-style roles: the uri is the detect stream; one stream per role."""
    if error is not None:
        with pytest.raises(ValidationError, match=error):
            SourceConfig.model_validate(source)
        return
    assert SourceConfig.model_validate(source).record_uri == record_uri

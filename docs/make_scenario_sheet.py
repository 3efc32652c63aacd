"""The README's picture of the scenario suite: one frame of every scenario, labelled.

Each thumbnail is the scenario's frame 3 s after its first true event starts (mid-video for a
negative), as the camera sees it (shake, weather, light, compression are in the frame). With
a suite table (``edge eval --suite ... --out T.json``) each label also carries the verdict.

    .venv/bin/python docs/make_scenario_sheet.py docs/images/scenarios.jpg [--table T.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.paths import project_root
from edge.tools.evaluation import load_truth
from edge.tools.scenarios import find_scenarios, load_recipe, render_frames

THUMB_WH = (176, 132)
COLUMNS = 6
COLOURS = {"pass": (60, 170, 60), "known limit": (0, 160, 230), "FAIL": (40, 40, 220)}


def _moment_s(truth_path: Path, duration_s: float) -> float:
    events = load_truth(truth_path).events
    return min(events[0].start_s + 3.0, duration_s - 0.5) if events else duration_s / 2


def _thumb(recipe_path: Path, truth_path: Path, label: str, verdict: str | None) -> np.ndarray:
    recipe = load_recipe(recipe_path)
    at_s = _moment_s(truth_path, recipe.duration_s)
    frame = next(f.image_bgr for f in render_frames(recipe) if f.ts_s >= at_s)
    thumb = cv2.resize(frame, THUMB_WH, interpolation=cv2.INTER_AREA)
    cv2.rectangle(thumb, (0, 0), (THUMB_WH[0], 18), (20, 20, 20), -1)
    cv2.putText(thumb, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1)
    if verdict is not None:
        cv2.rectangle(thumb, (0, 0), (THUMB_WH[0] - 1, THUMB_WH[1] - 1), COLOURS[verdict], 3)
    return thumb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--table", type=Path, default=None, help="suite JSON for the verdicts")
    args = ap.parse_args()
    verdicts: dict[str, str] = {}
    if args.table is not None:
        doc = json.loads(args.table.read_text())
        verdicts = {s["scenario"]: s["verdict"] for s in doc["scenarios"]}
    suite = project_root() / "sample_videos" / "scenarios"
    thumbs = []
    for s in find_scenarios(suite, Path("unused")):
        print(f"rendering {s.name}", file=sys.stderr)
        thumbs.append(_thumb(s.recipe_path, s.truth_path, s.name, verdicts.get(s.name)))
    while len(thumbs) % COLUMNS:
        thumbs.append(np.zeros_like(thumbs[0]))
    rows = [np.hstack(thumbs[i : i + COLUMNS]) for i in range(0, len(thumbs), COLUMNS)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 72])
    print(f"{args.out}: {args.out.stat().st_size // 1024} KB", file=sys.stderr)


if __name__ == "__main__":
    main()

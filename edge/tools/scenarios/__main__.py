"""Build scenario videos, or look at a recipe's frames.

python -m edge.tools.scenarios OUT_DIR [--suite sample_videos/scenarios] [--only NAME]
python -m edge.tools.scenarios OUT_DIR --only NAME --png 5 12.5   # frames at 5 s, 12.5 s
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from edge.paths import project_root
from edge.tools.scenarios.build import build_scenario, find_scenarios, render_frames
from edge.tools.scenarios.recipe import load_recipe


def _png(recipe_path: Path, out_dir: Path, times_s: list[float]) -> None:
    recipe = load_recipe(recipe_path)
    wanted = {round(t * recipe.encoding.fps) for t in times_s}
    out_dir.mkdir(parents=True, exist_ok=True)
    for frame in render_frames(recipe):
        if frame.index in wanted:
            path = out_dir / f"{recipe.name}_{frame.ts_s:06.2f}s.png"
            cv2.imwrite(str(path), frame.image_bgr)
            print(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--suite", type=Path, default=project_root() / "sample_videos" / "scenarios")
    ap.add_argument("--only", nargs="*", default=None, help="scenario names")
    ap.add_argument("--png", nargs="*", type=float, default=None, help="times, s: write PNGs")
    ap.add_argument("--force", action="store_true", help="rebuild videos that are up to date")
    args = ap.parse_args()
    scenarios = find_scenarios(args.suite, args.out_dir)
    chosen = [s for s in scenarios if args.only is None or s.name in args.only]
    for sc in chosen:
        if args.png is not None:
            _png(sc.recipe_path, args.out_dir, args.png)
            continue
        start = time.perf_counter()
        path = build_scenario(sc.recipe_path, args.out_dir, force=args.force)
        print(f"{path}  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()

"""The scenario suite's generator: street videos "the way street cameras see them", made at
run time from the shared photos and videos (never committed as media).

A scenario is a recipe (``<name>.recipe.yaml``: the street, the objects and their paths, the
camera's faults) plus a truth file (``<name>.truth.yaml``, evaluation.TruthFile) in one folder,
with the camera configs they name. Modules: recipe (the strict model), sprites (photos,
cut-outs, drawn objects), compose (the world at time t), weather and disturb (the camera),
build (render, encode, cache).

    from edge.tools.scenarios import build_suite
    for sc in build_suite(Path("sample_videos/scenarios"), Path("/tmp/suite")): ...
"""

from edge.tools.scenarios.build import (
    RenderedFrame,
    Scenario,
    build_scenario,
    build_suite,
    find_scenarios,
    render_frames,
)
from edge.tools.scenarios.recipe import Recipe, load_recipe

__all__ = [
    "Recipe",
    "RenderedFrame",
    "Scenario",
    "build_scenario",
    "build_suite",
    "find_scenarios",
    "load_recipe",
    "render_frames",
]

"""`edge models` (list, fetch, export) and `edge keys generate`."""

from __future__ import annotations

from pathlib import Path

import click

from contract.errors import StreetwatchError


@click.group()
def models() -> None:
    """List, download and export detection models."""


@models.command("list")
def models_list() -> None:
    """Show the models in the manifest and where (or whether) each is found offline."""
    from edge.detectors.catalog import load_manifest, resolve_model
    from edge.errors import ModelError

    manifest = load_manifest()
    for name, entry in manifest.models.items():
        try:
            where = str(resolve_model(name, manifest))
        except ModelError:
            where = "not found offline" + (f" (edge models fetch {name})" if entry.url else "")
        click.echo(f"{name:<16} {entry.family:<7} {entry.input_wh[0]}x{entry.input_wh[1]}  {where}")


@models.command("fetch")
@click.argument("name")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to save into (default: the checkout's models/, else $STREETWATCH_ASSETS/models).",
)
def models_fetch(name: str, dest: Path | None) -> None:
    """Download model NAME from its manifest URL (connected machines only), checking sha256."""
    from tqdm import tqdm

    from edge.detectors.catalog import default_models_dir, fetch, load_manifest

    manifest = load_manifest()
    target = dest or default_models_dir()
    bar = tqdm(unit="B", unit_scale=True, desc=name)

    def progress(done: int, total: int) -> None:
        bar.total = total or None
        bar.n = done
        bar.refresh()

    try:
        path = fetch(name, manifest, target, progress)
    finally:
        bar.close()
    click.echo(str(path))


@models.command("export")
@click.argument("weights")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output .onnx path (default: beside the weights).",
)
@click.option(
    "--imgsz",
    default=640,
    show_default=True,
    type=click.IntRange(32),
    help="Square network input size in pixels (a multiple of 32).",
)
@click.option("--int8", is_flag=True, help="Also quantise weights to int8 (dynamic).")
@click.option(
    "--batch",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Frames per inference: `edge run` batches this many cameras' frames in one run.",
)
@click.option(
    "--class-list",
    default=None,
    help="Name the classes from a list in models/manifest.yaml (e.g. coco80), for "
    "models whose checkpoint carries no names, such as one built from a YAML.",
)
def models_export(
    weights: str, out: Path | None, imgsz: int, int8: bool, batch: int, class_list: str | None
) -> None:
    """Export an Ultralytics model (WEIGHTS: .pt checkpoint or model .yaml) to ONNX.

    Needs the export extra. With a name such as yolo11n.pt, Ultralytics downloads the COCO
    weights first, so run it on a connected machine and copy the .onnx to the edge box.
    """
    from edge.detectors.catalog import load_manifest
    from edge.tools.export import export_ultralytics

    if imgsz % 32:
        raise StreetwatchError(f"--imgsz {imgsz} is not a multiple of 32")
    names = None
    if class_list is not None:
        lists = load_manifest().class_lists
        if class_list not in lists:
            raise StreetwatchError(
                f"unknown class list '{class_list}': one of {', '.join(sorted(lists))}"
            )
        names = tuple(lists[class_list])
    click.echo(str(export_ultralytics(weights, out, imgsz, int8, names, batch)))


@click.group()
def keys() -> None:
    """Manage this edge box's CURVE key pair."""


@keys.command("generate")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("keys"),
    show_default=True,
    help="Folder for the key files.",
)
def keys_generate(name: str, directory: Path) -> None:
    """Write NAME.key (public: register it with `aggregator edges add`) and NAME.key_secret
    (secret, mode 600, stays on this box)."""
    from contract.keys import generate

    public, secret = generate(directory, name)
    click.echo(f"{public}\n{secret}")

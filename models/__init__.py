"""Model manifests, installed as the `streetwatch_models` package (see pyproject.toml).

This folder is the package itself: a checkout (editable install) reads models/manifest.yaml
here, and a wheel carries the same file as package data. Weights downloaded or exported into
this folder are git-ignored and never packaged. Read the manifest with
edge.detectors.catalog.load_manifest(), not by path.
"""

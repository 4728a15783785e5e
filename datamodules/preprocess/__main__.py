"""Command line of the face preprocessing: read a dataset with its reader, write aligned crops.

Example::

    python -m datamodules.preprocess --dataset ffpp --root /data/FaceForensics++ \
        --out /data/crops/ffpp --frames 32 --size 256 --margin 1.3 --workers 8 compression=c23

Trailing ``key=value`` arguments go to the reader, in the ``key=value`` form of every command (values
read as YAML, as Hydra's overrides: ``limit=10`` is an int, ``methods=[Deepfakes]`` a list, anything
else a string). Console script: ``facemoe-preprocess`` (the same arguments).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from rich.console import Console

from datamodules.preprocess.faces import FaceModelError
from datamodules.preprocess.pipeline import (
    FACE_CHOICES,
    IMAGE_FORMATS,
    PreprocessConfig,
    PreprocessError,
    format_summary,
    preprocess_records,
)
from datamodules.records import RecordError


def parse_reader_options(pairs: list[str]) -> dict[str, Any]:
    """``["a=1", "b=c23"]`` -> ``{"a": 1, "b": "c23"}``: the ``key=value`` form of every command (Hydra's
    overrides, engine/robustness.py), values read as YAML (so JSON lists and numbers parse too)."""
    for pair in pairs:
        key, separator, _ = pair.partition("=")
        if not separator or not key:
            raise PreprocessError(f"reader option {pair!r} is not of the form key=value")
    return OmegaConf.to_container(OmegaConf.from_dotlist(list(pairs)), resolve=True)  # type: ignore[return-value]


EXTRACTED_DIR = "extracted"  # <out>/extracted: where readers that unpack archives put them


def read_records(dataset: str, root: Path, options: dict[str, Any], out: Path | None = None) -> Any:
    """The raw records of ``dataset`` from its registered reader.

    The readers' own errors (unknown name, layout not as expected) are ValueErrors that already
    name the file and what was expected: they become a :class:`PreprocessError` with that message.
    A reader that unpacks archives (WildDeepfake, ``extract_archives=true``) extracts them into
    ``<out>/extracted`` unless ``extract_dir`` is given: into the prepared tree, never into the
    dataset folder, which may be read-only.
    """
    # Imported here so the preprocessing itself never depends on the readers package.
    from datamodules.readers import get_reader

    try:
        reader = get_reader(dataset)
        if out is not None and options.get("extract_archives") and "extract_dir" not in options:
            if "extract_dir" in inspect.signature(reader).parameters:
                options = {**options, "extract_dir": str(out / EXTRACTED_DIR)}
        return reader(root, **options)
    except (ValueError, TypeError) as error:  # TypeError: an option the reader does not take
        raise PreprocessError(f"reader {dataset!r} on {root}: {error}") from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datamodules.preprocess",
        description="Sample frames uniformly, detect and align faces, write crops + index.csv + report.json.",
    )
    defaults = PreprocessConfig()
    parser.add_argument("--dataset", required=True, help="reader name, as for datamodules.readers.get_reader")
    parser.add_argument("--root", required=True, type=Path, help="dataset root the reader reads")
    parser.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    parser.add_argument("--frames", type=int, default=defaults.frames, help="frames per video, uniform")
    parser.add_argument("--size", type=int, default=defaults.size, help="crop side in pixels")
    parser.add_argument(
        "--margin", type=float, default=defaults.margin, help="crop side / template face side"
    )
    parser.add_argument("--workers", type=int, default=defaults.workers, help="worker processes")
    parser.add_argument("--face", choices=FACE_CHOICES, default=defaults.face, help="which face when several")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default=defaults.image_format)
    parser.add_argument("--jpeg-quality", type=int, default=defaults.jpeg_quality)
    parser.add_argument("--upsample", type=int, default=defaults.upsample, help="dlib detector upsampling")
    parser.add_argument(
        "--detect-max-side",
        type=int,
        default=defaults.detect_max_side,
        help="frames are downscaled to this longer side for detection only",
    )
    parser.add_argument("reader_options", nargs="*", metavar="key=value", help="options passed to the reader")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        config = PreprocessConfig(
            frames=args.frames,
            size=args.size,
            margin=args.margin,
            face=args.face,
            image_format=args.image_format,
            jpeg_quality=args.jpeg_quality,
            upsample=args.upsample,
            detect_max_side=args.detect_max_side,
            workers=args.workers,
        )
        options = parse_reader_options(args.reader_options)
        records = read_records(args.dataset, args.root, options, args.out)
        # Paths are relative to the dataset root, or to where the reader extracted archives.
        media_root = Path(records.attrs.get("media_root", args.root))
        console.print(f"{args.dataset}: {len(records)} record(s) from {media_root}", markup=False)
        result = preprocess_records(records, media_root, args.out, config)
    except (PreprocessError, FaceModelError, RecordError) as error:
        # markup=False: messages hold paths and "[Errno ...]" that rich would read as markup.
        console.print(f"error: {error}", style="red", markup=False, soft_wrap=True)
        return 2
    console.print(format_summary(result.report), markup=False, highlight=False, soft_wrap=True)
    return 1 if result.report["counts"]["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

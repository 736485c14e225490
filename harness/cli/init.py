"""``harness init [DIR]``: scaffold a harness project in a user's repository.

Writes the ``[tool.harness]`` table (into a new ``pyproject.toml``, or appended to an
existing one that has none), one example vector made from the user's own image (or a
stand-in photograph when none is given), a suite that runs it through a built-in pipeline
and through a custom ``module:attr`` backend in a local module, and prints the next steps
with a CI snippet.  It never overwrites: an existing file it would write is exit 2,
naming every such file, and nothing is written.  The one file it adds to instead is the
repository's ``.gitignore``: the stage cache, the image store and the run folders are outputs, and
``git add -A`` right after ``harness init`` / ``harness bake`` must not commit them, so
the lines of :data:`GITIGNORE` that it lacks are appended (a new ``.gitignore`` is
written when there is none).
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from harness.errors import ConfigError, InputError

__all__ = ["add_command", "scaffold"]

TABLE = """
[tool.harness]
# Folders of this harness project (relative to this file); see `harness init --help`.
vectors = "vectors"
suites = "vectors/suites"
baselines = "baselines"
reports = "reports"
cache = ".harness-cache"
store = ".harness-store"  # every stage image once, by sha256 (runs and baselines share it)
pythonpath = ["."]      # makes harness_backends.py importable as a custom backend
suite = "smoke"         # what `harness run` and `pytest` run by default
"""

VECTOR = """id = "example"
description = "your image with a caption to remove; the lower band must keep its texture"
tags = ["example", "text-removal"]
size = [256, 256]

[source]
kind = "file"
path = "assets/{image}"    # relative to this file: replace it with one of your own images
fit = "resize"

[[overlays]]
kind = "text"
text = "SAMPLE 42"
position = [40, 40]
size = 28
color = [255, 255, 255]
stroke = 2
stroke_color = [0, 0, 0]

[[anchors]]
kind = "texture"
box = [16, 176, 240, 248]    # [x0, y0, x1, y1]: fine texture that must survive

[expect]
anchors_survive = true
"""

SUITE = """# The project's default suite: `harness run`, `harness bake` and `pytest` use it.
name = "smoke"
description = "the example vector through a built-in pipeline and through a custom backend"
seeds = [1, 2]
vectors = ["example"]
mode = "paired"
threads = 1

[pipelines.builtin]
generate = { backend = "source" }
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2, max_coverage = 0.12 }
inpaint = { backend = "telea", radius = 3 }
denoise = { backend = "tv", strength = 0.15 }
upscale = { backend = "lanczos", scale = 2 }

[pipelines.custom]
generate = { backend = "source" }
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2, max_coverage = 0.12 }
inpaint = { backend = "telea", radius = 3 }
denoise = { backend = "harness_backends:gentle_denoise", sigma = 0.4 }
upscale = { backend = "lanczos", scale = 2 }
"""

BACKENDS = '''"""Custom harness backends of this project: plug your own models in here.

A backend is a function ``f(image, ctx, **params)`` that returns an (H, W, 3) uint8 image
(``ctx.seed``, ``ctx.mask``, ``ctx.anchors`` and ``ctx.guide`` carry the rest), or a class
with a frozen ``Params`` dataclass (see ``harness.BackendBase``).  A suite names it as
``backend = "harness_backends:gentle_denoise"``.
"""

import numpy as np
from scipy import ndimage


def gentle_denoise(image, ctx, sigma=0.4):
    """A light Gaussian smoothing of each channel: stands in for your denoising model."""
    out = ndimage.gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
'''

# What `harness run` / `bake` write that is never committed (the folders of TABLE, anchored at the root).
GITIGNORE_HEADER = "# harness: stage cache, image store and run folders (outputs, never committed)"
GITIGNORE = ("/.harness-cache/", "/.harness-store/", "/reports/")

NEXT_STEPS = """harness project initialised in {root}

Next steps:
  harness vectors show example --out /tmp/example   # look at the test vector
  harness bake                                      # write baselines/smoke/ (review and commit them)
  harness run                                       # compare a fresh run with the baselines
  pytest                                            # the same cases as pytest items (-k, -n work)

Replace {image_rel} with one of your own images, add vectors
and pipelines, and point the custom pipeline at your model in harness_backends.py.

CI (e.g. a GitHub Actions step, after installing your project and harness):
  - run: harness run --workers 2 --bundle harness-bundle   # exit 1 on a regression, 2 on a bad config
  - uses: actions/upload-artifact@v4
    if: always()
    with: {{ name: harness-report, path: harness-bundle/ }}   # report + views + images, self-contained
"""


def _stand_in_image() -> "np.ndarray":  # noqa: F821 - numpy is imported lazily
    from skimage import data

    return data.coffee()  # a real photograph shipped with scikit-image, offline


def _png_bytes(image_path: Path | None) -> bytes:
    import io

    from PIL import Image

    if image_path is None:
        img = Image.fromarray(_stand_in_image())
    else:
        from harness.imageio import load_image

        arr = load_image(image_path)  # clear InputError for a missing/corrupt/truncated file
        if arr.dtype != "uint8":
            arr = (arr >> 8).astype("uint8") if arr.dtype == "uint16" else arr
        img = Image.fromarray(arr)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def scaffold(root: Path, image: Path | None = None) -> list[Path]:
    """Write the project files under ``root``; returns what was written (or raises, writing nothing)."""
    from harness.fsio import atomic_write_bytes, atomic_write_text

    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: not a directory")
    image_name = "example.png"
    files: dict[Path, str | bytes] = {
        root / "vectors" / "example.toml": VECTOR.format(image=image_name),
        root / "vectors" / "suites" / "smoke.toml": SUITE,
        root / "harness_backends.py": BACKENDS,
    }
    asset = root / "vectors" / "assets" / image_name
    pyproject = root / "pyproject.toml"
    append_table = False
    existing = [p for p in [*files, asset] if p.exists()]
    if (root / "harness.toml").exists():
        existing.append(root / "harness.toml")
    if pyproject.exists():
        try:
            doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"{pyproject}: cannot add [tool.harness] to it ({exc})") from None
        if "harness" in doc.get("tool", {}):
            existing.append(pyproject)
        append_table = True
    if existing:
        raise ConfigError("harness init would overwrite " + ", ".join(str(p) for p in existing)
                          + "; nothing written (move them away or pick another folder)")
    gitignore = root / ".gitignore"
    ignore_text = _gitignore_text(gitignore)  # an unreadable .gitignore fails before anything is written
    png = _png_bytes(image)  # read the user's image before writing anything
    written: list[Path] = []
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        (atomic_write_bytes if isinstance(body, bytes) else atomic_write_text)(path, body)
        written.append(path)
    atomic_write_bytes(asset, png)
    written.append(asset)
    if append_table:
        text = pyproject.read_text(encoding="utf-8")
        atomic_write_text(pyproject, text.rstrip("\n") + "\n" + TABLE)
    else:
        atomic_write_text(pyproject, TABLE.lstrip("\n"))
    written.append(pyproject)
    if ignore_text is not None:
        atomic_write_text(gitignore, ignore_text)
        written.append(gitignore)
    return written


def _ignored(line: str) -> str:
    """A .gitignore pattern of a folder in one spelling: ``.harness-cache``, ``/.harness-cache/``,
    ``/reports/*`` and ``reports/**`` all name their folder (``reports/*`` plus a ``!reports/README.md``
    exception is a user's choice that a later ``/reports/`` line would override)."""
    s = line.strip()
    while s.endswith(("/*", "/**")):
        s = s.rsplit("/", 1)[0]
    return s.strip("/")


def _gitignore_text(path: Path) -> str | None:
    """The ``.gitignore`` with the lines of :data:`GITIGNORE` it lacks appended (the whole file when
    there is none); None when it already has them all.  A pattern counts as present in any of
    its spellings (leading / trailing slash or not), so nothing the user wrote is duplicated."""
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot add the harness cache and reports folders to it ({exc})") from None
    have = {_ignored(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    missing = [line for line in GITIGNORE if _ignored(line) not in have]
    if not missing:
        return None
    head = text.rstrip("\n") + "\n\n" if text.strip() else ""
    return head + "\n".join([GITIGNORE_HEADER, *missing]) + "\n"


def _cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    written = scaffold(root, Path(args.image) if args.image else None)
    for p in written:
        print(f"wrote {p}")
    rel = Path("vectors") / "assets" / "example.png"
    print()
    print(NEXT_STEPS.format(root=root.resolve(), image_rel=rel))
    return 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "init", help="scaffold a harness project in a repository (config, example vector, suite, custom backend)",
        description="Creates, in DIR (default: the working directory): a [tool.harness] table (in a new "
                    "pyproject.toml, or appended to an existing one without such a table), vectors/example.toml "
                    "made from your image (--image) or a stand-in photograph, vectors/suites/smoke.toml running "
                    "it through a built-in pipeline and through a custom backend, and harness_backends.py "
                    "holding that backend; appends the cache and reports folders to .gitignore. Right after it, "
                    "`harness bake` then `harness run` pass.",
        epilog="Never overwrites: if any file it would write exists, it exits 2 naming them and writes nothing. "
               "An existing .gitignore is added to (only the lines it lacks), never replaced.")
    p.add_argument("dir", nargs="?", default=".", help="the repository folder (default: .)")
    p.add_argument("--image", metavar="PATH",
                   help="your own image for the example vector (PNG, JPEG, ...; copied as vectors/assets/example.png)")
    p.set_defaults(func=_cmd_init)

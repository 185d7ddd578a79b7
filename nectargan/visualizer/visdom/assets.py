"""Visdom's web assets, installed from the npm registry so the dashboard works offline.

Visdom 0.2.4 downloads its JavaScript, CSS and fonts from CDNs the first time
its server starts, and dies when it cannot. Every one of those files is also
published as part of an npm package, so we fetch the packages with the
ordinary ``npm pack`` client (which honours the user's npm configuration,
mirrors and proxies included) and place each file where Visdom looks for it.
Once ``static/version.built`` holds Visdom's version, Visdom never tries to
download anything again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nectargan.errors import ServerUserError

MATHJAX_VERSION = "2.7.5"
# MathJax sub-trees the SVG renderer needs; the 20 MB of HTML-CSS web fonts is not.
MATHJAX_TREES = (
    "MathJax.js",
    "config/",
    "extensions/",
    "jax/element/",
    "jax/input/",
    "jax/output/SVG/",
)


@dataclass(frozen=True)
class Asset:
    """One file Visdom serves, and where the npm registry has it."""

    destination: str  # relative to visdom/static/
    package: str  # name@version
    member: str  # path inside the package tarball, below "package/"


_BOOTSTRAP = "bootstrap@3.3.7"
_GLYPH = "glyphicons-halflings-regular"

ASSETS: tuple[Asset, ...] = (
    Asset("js/jquery.min.js", "jquery@3.1.1", "dist/jquery.min.js"),
    Asset("js/bootstrap.min.js", _BOOTSTRAP, "dist/js/bootstrap.min.js"),
    Asset("css/bootstrap.min.css", _BOOTSTRAP, "dist/css/bootstrap.min.css"),
    *(
        Asset(f"fonts/{_GLYPH}.{ext}", _BOOTSTRAP, f"dist/fonts/{_GLYPH}.{ext}")
        for ext in ("eot", "woff2", "woff", "ttf", "svg")
    ),
    # Visdom's build step checks for this literal file name (a URL fragment kept as-is).
    Asset(
        f"fonts/{_GLYPH}.svg#glyphicons_halflingsregular", _BOOTSTRAP, f"dist/fonts/{_GLYPH}.svg"
    ),
    Asset("js/react-react.min.js", "react@16.2.0", "umd/react.production.min.js"),
    Asset("js/react-dom.min.js", "react-dom@16.2.0", "umd/react-dom.production.min.js"),
    Asset("js/react-modal.min.js", "react-modal@3.1.10", "dist/react-modal.min.js"),
    Asset("js/plotly-plotly.min.js", "plotly.js-dist-min@2.11.1", "plotly.min.js"),
    Asset("js/sjcl.js", "sjcl@1.0.7", "sjcl.js"),
    Asset("js/layout_bin_packer.js", "layout-bin-packer@1.4.0", "dist/layout-bin-packer.js"),
    Asset(
        "js/layout-bin-packer.js.map", "layout-bin-packer@1.4.0", "dist/layout-bin-packer.js.map"
    ),
    Asset("js/d3.v3.min.js", "d3@3.5.17", "d3.min.js"),
    Asset("js/d3-selection-multi.v1.js", "d3-selection-multi@1.0.1", "build/d3-selection-multi.js"),
    Asset("js/saveSvgAsPng.js", "save-svg-as-png@1.4.17", "lib/saveSvgAsPng.js"),
    Asset("css/react-resizable-styles.css", "react-resizable@1.4.6", "css/styles.css"),
    Asset("css/react-grid-layout-styles.css", "react-grid-layout@0.16.3", "css/styles.css"),
    Asset("fonts/classnames", "classnames@2.2.5", "index.js"),
)

# The MathJax files Visdom's build step checks one by one at every start.
MATHJAX_REQUIRED = (
    "config/Safe.js",
    "config/TeX-AMS-MML_HTMLorMML.js",
    "extensions/Safe.js",
    "jax/output/SVG/fonts/TeX/fontdata.js",
    "jax/output/SVG/jax.js",
    "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js",
    "jax/output/SVG/config.js",
    "MathJax.js",
)


class AssetInstallError(ServerUserError):
    """The assets could not be fetched or placed; the message says which and why."""


def visdom_static_dir() -> Path:
    """Where the installed visdom package serves its static files from.

    Found without importing visdom, whose ``__init__`` imports torch (about a second).
    """
    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("No module named 'visdom'", name="visdom")
    return Path(spec.origin).resolve().parent / "static"


def visdom_version() -> str:
    return importlib.metadata.version("visdom")


def _mathjax_dir(static: Path) -> Path:
    return static / "js" / "mathjax" / MATHJAX_VERSION


def required_files(static: Path | None = None) -> list[Path]:
    """Every file whose absence makes Visdom try a download at start-up."""
    static = static or visdom_static_dir()
    files = [static / a.destination for a in ASSETS]
    files += [_mathjax_dir(static) / rel for rel in MATHJAX_REQUIRED]
    return files


def missing_assets(static: Path | None = None) -> list[str]:
    """Relative paths of missing files, plus ``version.built`` when it is stale."""
    static = static or visdom_static_dir()
    missing = [str(p.relative_to(static)) for p in required_files(static) if not p.is_file()]
    built = static / "version.built"
    if not built.is_file() or built.read_text().strip() != visdom_version():
        missing.append("version.built")
    return missing


def assets_present(static: Path | None = None) -> bool:
    return not missing_assets(static)


def _npm_pack(specs: list[str], dest: Path, timeout: float) -> dict[str, Path]:
    """Download package tarballs with ``npm pack``; map each spec to its tarball."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetInstallError(
            "npm was not found on PATH: it is needed to fetch Visdom's web assets from the "
            "npm registry. Install Node.js/npm (e.g. `apt-get install npm`) and run "
            "`nectargan visdom install-assets` again."
        )
    cmd = [npm, "pack", "--silent", "--pack-destination", str(dest), *specs]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssetInstallError(
            f"npm pack did not finish within {timeout:.0f} s: the npm registry could not be "
            f"reached in time (packages: {', '.join(specs)})."
        ) from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise AssetInstallError(
            "npm pack failed, so Visdom's web assets could not be fetched from the npm "
            f"registry (exit code {proc.returncode}): " + " | ".join(detail)
        )
    tarballs = {}
    for spec in specs:
        name, version = spec.rsplit("@", 1)
        tarball = dest / f"{name.replace('/', '-').lstrip('@')}-{version}.tgz"
        if not tarball.is_file():
            raise AssetInstallError(f"npm pack reported success but {tarball.name} is missing")
        tarballs[spec] = tarball
    return tarballs


def _extract_member(tar: tarfile.TarFile, member: str, target: Path) -> None:
    try:
        source = tar.extractfile(f"package/{member}")
    except KeyError:
        source = None
    if source is None:
        raise AssetInstallError(f"{member} is not in the package {tar.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    with source, open(tmp, "wb") as out:
        shutil.copyfileobj(source, out)
    tmp.replace(target)


def _extract_mathjax(tarball: Path, mathjax_dir: Path) -> int:
    """Unpack the MathJax sub-trees Visdom's SVG renderer uses; return the file count."""
    count = 0
    with tarfile.open(tarball) as tar:
        for info in tar.getmembers():
            rel = info.name.removeprefix("package/")
            if not info.isfile() or not rel.startswith(MATHJAX_TREES):
                continue
            if ".." in Path(rel).parts:
                continue
            _extract_member(tar, rel, mathjax_dir / rel)
            count += 1
    return count


def install_assets(
    static: Path | None = None, *, force: bool = False, timeout: float = 300.0, log=print
) -> list[str]:
    """Fetch and place every asset, write ``version.built``, then verify.

    Returns the relative paths installed. Idempotent: with everything in
    place and ``force`` false it downloads nothing.
    """
    static = static or visdom_static_dir()
    if not force and assets_present(static):
        log(f"Visdom web assets already installed in {static}")
        return []
    todo = [a for a in ASSETS if force or not (static / a.destination).is_file()]
    mathjax = _mathjax_dir(static)
    need_mathjax = force or any(not (mathjax / rel).is_file() for rel in MATHJAX_REQUIRED)
    specs = sorted(
        {a.package for a in todo} | ({f"mathjax@{MATHJAX_VERSION}"} if need_mathjax else set())
    )
    installed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nectargan-assets-") as tmp:
        if specs:
            log(f"Fetching {len(specs)} npm packages for Visdom's web assets ...")
            tarballs = _npm_pack(specs, Path(tmp), timeout)
            for asset in todo:
                with tarfile.open(tarballs[asset.package]) as tar:
                    _extract_member(tar, asset.member, static / asset.destination)
                installed.append(asset.destination)
            if need_mathjax:
                n = _extract_mathjax(tarballs[f"mathjax@{MATHJAX_VERSION}"], mathjax)
                installed.append(f"js/mathjax/{MATHJAX_VERSION} ({n} files)")
    (static / "version.built").write_text(visdom_version())
    still_missing = missing_assets(static)
    if still_missing:
        raise AssetInstallError(
            "Visdom web assets are still incomplete after installation; missing: "
            + ", ".join(still_missing)
        )
    log(f"Visdom web assets installed and verified in {static}")
    return installed

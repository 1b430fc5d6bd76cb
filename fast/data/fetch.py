"""`fast fetch`: put a dataset as published under ``OUT/<dataset>/``, verified and atomically.

Source resolution: ``--source`` (local directory, local archive or URL), else
``$FAST_DATA_DIR/<dataset>`` if it exists, else the registry's public URL. A local directory is
copied; an archive (local or downloaded to a temporary name) has its sha256 verified where one is
known, is extracted, and the result is renamed into place. ``synthetic`` is generated. A record
(``fetch_record.json``: source, sha256, date) is written beside the data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import tarfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from fast.data import synthetic
from fast.data.prepare import parse_options
from fast.data.registry import DownloadInfo
from fast.errors import FastError
from fast.io import is_write_error, os_error_message, os_error_reason

log = logging.getLogger(__name__)

RECORD = "fetch_record.json"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def resolve_source(dataset: str, source: str | None, info: DownloadInfo) -> str:
    if source:
        return source
    env = os.environ.get("FAST_DATA_DIR")
    if env and (Path(env) / dataset).exists():
        return str(Path(env) / dataset)
    if info.url:
        return info.url
    raise FastError(f"dataset {dataset!r} has no public download URL ({info.note}); "
                    f"pass --source PATH or set $FAST_DATA_DIR")


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https", "ftp", "file")


def download(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (a temporary name chosen by the caller)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as f:
            shutil.copyfileobj(resp, f, CHUNK)
    except OSError as exc:
        if is_write_error(exc):  # the disk, not the download, failed
            raise FastError(f"download of {url} into {dest.parent}: {os_error_reason(exc)}") from None
        raise FastError(f"download of {url} failed: {exc}") from None
    except ValueError as exc:
        raise FastError(f"download of {url} failed: {exc}") from None


def _safe_members_tar(tf: tarfile.TarFile, dest: Path):
    for m in tf.getmembers():
        target = (dest / m.name).resolve()
        if not target.is_relative_to(dest.resolve()) or m.issym() or m.islnk() or m.isdev():
            raise FastError(f"archive member {m.name!r} is unsafe (outside the target or a link)")
    return tf.getmembers()


def extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``dest``; a corrupt one is a FastError."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise FastError(f"archive {archive} is corrupt (member {bad})")
                for name in zf.namelist():
                    if not (dest / name).resolve().is_relative_to(dest.resolve()):
                        raise FastError(f"archive member {name!r} is unsafe (outside the target)")
                zf.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = _safe_members_tar(tf, dest)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse unsafe members too
                    tf.extractall(dest, members=members, filter="data")
                else:
                    tf.extractall(dest, members=members)
        else:
            raise FastError(f"{archive}: not a zip or tar archive (corrupt or partial download?)")
    except OSError as exc:
        if is_write_error(exc):  # the disk, not the archive, failed
            raise FastError(f"cannot extract {archive} into {dest}: {os_error_reason(exc)}") from None
        raise FastError(f"archive {archive} is corrupt or partial: {exc}") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise FastError(f"archive {archive} is corrupt or partial: {exc}") from None


def _looks_like(fmt, path: Path) -> bool:
    try:
        return bool(fmt.categories(path, fmt.options))
    except FastError:
        return False


def dataset_root(path: Path, fmt) -> Path:
    """Descend through wrapper folders (``btad.zip`` -> ``BTech_Dataset_transformed/``,
    GitHub archives -> ``<repo>-master/``) until the format recognises a dataset root."""
    while not _looks_like(fmt, path):
        entries = [p for p in path.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(entries) == 1 and entries[0].is_dir():
            path = entries[0]
        else:
            break
    return path


def check_links(root: Path, source: str) -> None:
    """A local source directory is copied with its links followed: a link that leaves the source
    tree (or loops, or dangles) would copy something that is not the dataset, so it is refused."""
    top = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                continue
            target = p.resolve()
            if not target.exists():
                raise FastError(f"--source {source}: {p} is a broken symbolic link (to {os.readlink(p)}); "
                                f"remove it or fix its target")
            if not target.is_relative_to(top):
                raise FastError(f"--source {source}: {p} is a symbolic link to {target}, outside the source "
                                f"tree; copy that data into the tree (or pass a tree without such links)")
            if target.is_dir() and p.parent.resolve().is_relative_to(target):
                raise FastError(f"--source {source}: {p} is a symbolic link to its own parent {target} "
                                f"(a loop); remove it")


def fill_raw_dir(tmp: Path, args, fmt) -> dict:
    """Put the dataset into the fresh directory ``tmp``; return the record."""
    record = {"dataset": fmt.name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if fmt.name == "synthetic" and not args.source:
        options = parse_options(args.options)
        cats = synthetic.generate(tmp, options, seed=args.seed)
        record.update(source="generated by fast.data.synthetic", sha256=None, seed=args.seed,
                      options=synthetic.resolve_options(options), categories=cats)
        return record
    source = resolve_source(fmt.name, args.source, fmt.download)
    local = Path(source)
    # the registry checksum applies to the official archive, downloaded or kept locally
    official = source == fmt.download.url or (not _is_url(source) and local.name == fmt.download.filename)
    expected = args.sha256 or (fmt.download.sha256 if official else None)
    record.update(source=source, sha256=None)
    if not _is_url(source) and local.is_dir():
        if args.sha256:
            log.warning("--sha256 ignored: %s is a directory, not an archive", source)
        src_root = dataset_root(local, fmt)
        check_links(src_root, source)
        try:
            shutil.copytree(src_root, tmp, dirs_exist_ok=True)
        except shutil.Error as exc:
            raise FastError(os_error_message(exc)) from None
        except OSError as exc:
            raise FastError(f"cannot copy {source} into {tmp.parent}: {os_error_reason(exc)}") from None
        return record
    work = tmp / ".fetch-work"  # inside the temporary output: removed with it, whatever happens
    work.mkdir()
    try:
        if _is_url(source):
            archive = work / "download.part"
            log.info("downloading %s", source)
            download(source, archive)
        elif local.is_file():
            archive = local
        else:
            raise FastError(f"--source {source}: no such file or directory")
        digest = sha256_file(archive)
        if expected and digest != expected.lower():
            raise FastError(f"checksum mismatch for {source}: sha256 {digest}, expected {expected}; "
                            f"nothing was written (a corrupt or changed archive? if you trust this copy, "
                            f"pass --sha256 {digest})")
        if not expected:
            log.warning("no checksum known for %s; its sha256 is %s (pass --sha256 to pin it)", source, digest)
        record.update(sha256=digest, sha256_verified=bool(expected))
        extracted = work / "x"
        extracted.mkdir()
        extract(archive, extracted)
        for p in dataset_root(extracted, fmt).iterdir():
            os.replace(p, tmp / p.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record

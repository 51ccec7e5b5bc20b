"""``intake-zspy catalog``: an intake catalog of every store under a folder or prefix."""

from __future__ import annotations

import argparse
import os
import posixpath
import sys
from collections.abc import Mapping
from typing import Any

from intake_zspy.cli import _common as c

__all__ = ["register"]

_EPILOG = """\
examples:
  intake-zspy catalog /data/2026/ -o catalog.yml
  intake-zspy catalog "s3://lab/runs/*.zspy" -o catalog.yml --storage-options @s3.json
  intake-zspy catalog s3://lab/2026/ -o catalog.yml --previews previews/
  intake-zspy catalog /data/ > catalog.yml

Open the result with intake.open_catalog("catalog.yml"); each entry is a zspy source of
one store (its first signal; the others are listed in the entry's metadata). With
--previews, each readable store gets DIR/<entry>.png and its entry's metadata gets
"preview": the PNG's path relative to the catalog file (or its URL).
Credentials in --storage-options (key, secret, token, ...) are not written into the
catalog unless --keep-credentials: readers bring their own (environment, ~/.aws).
"""


def register(commands: Any) -> None:
    """Add the ``catalog`` command."""
    p = commands.add_parser(
        "catalog",
        help="write an intake catalog of all stores under a folder or bucket prefix",
        description="Find every zspy store (directories and zip files) under a folder, "
        "bucket prefix or glob and write an intake (v1) catalog with one entry per store, "
        "described from its metadata; optionally draw a preview of each.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prefix", help="a folder, an fsspec URL prefix or a glob of stores")
    p.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="YAML",
        help="the catalog file to write, path or URL (default: standard output)",
    )
    p.add_argument("--name", help="the catalog's name (default: the prefix's last part)")
    p.add_argument("--description", help="the catalog's description")
    p.add_argument("--previews", metavar="DIR", help="write a PNG preview of each store into DIR")
    p.add_argument(
        "--preview-size", metavar="WxH", help="preview size in pixels (see preview --size)"
    )
    p.add_argument(
        "--keep-credentials",
        action="store_true",
        help="write credentials from --storage-options into the catalog entries",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing catalog and previews"
    )
    c.add_storage_options(p)
    p.set_defaults(func=run)


def _preview_ref(png: c.Output, catalog: c.Output | None) -> str:
    """The preview's path relative to the catalog file when both are local, else its URL."""
    local = "://" not in png.url and "::" not in png.url
    if catalog is not None and local and "://" not in catalog.url and "::" not in catalog.url:
        return os.path.relpath(png.path, os.path.dirname(catalog.path)).replace(os.sep, "/")
    return png.url


def _previews(
    sources: dict[str, Any],
    args: argparse.Namespace,
    options: Mapping[str, Any],
    catalog: c.Output | None,
) -> int:
    from intake_zspy.cli import describe_error
    from intake_zspy.cli.preview import parse_pixels
    from intake_zspy.preview import preview_png

    size = parse_pixels(args.preview_size)
    made = 0
    for name, entry in sources.items():
        meta, entry_args = entry.setdefault("metadata", {}), entry.get("args", {})
        if meta.get("error"):
            continue
        target = posixpath.join(args.previews.rstrip("/"), f"{name}.png")
        try:
            png = c.resolve_output(target, options, overwrite=args.overwrite)
            signal = entry_args.get("signal")
            urlpath = entry_args["urlpath"]
            png.write(preview_png(urlpath, signal=signal, size=size, storage_options=options))
        except Exception as exc:  # noqa: BLE001 - one bad store must not stop the others
            sys.stderr.write(
                f"intake-zspy catalog: warning: no preview of {name}: {describe_error(exc)}\n"
            )
            continue
        meta["preview"] = _preview_ref(png, catalog)
        made += 1
    return made


def run(args: argparse.Namespace) -> int:
    """Run ``catalog``."""
    import yaml

    from intake_zspy.catalog import ZspyStoresCatalog
    from intake_zspy.storage import strip_credentials

    options = c.parse_storage_options(args.storage_options)
    output = None
    if args.output != "-":
        output = c.resolve_output(args.output, options, overwrite=args.overwrite)
    kwargs: dict[str, Any] = {"storage_options": options}
    if args.name:
        kwargs["name"] = args.name
    if args.description:
        kwargs["description"] = args.description
    cat = ZspyStoresCatalog(args.prefix, **kwargs)
    doc = yaml.safe_load(cat.serialize(include_credentials=args.keep_credentials))
    sources: dict[str, Any] = doc.get("sources") or {}
    removed = [] if args.keep_credentials else strip_credentials(options)[1]
    if removed and sources:
        sys.stderr.write(
            f"intake-zspy catalog: note: credentials left out of the catalog ({', '.join(sorted(removed))}); "
            "pass --keep-credentials to write them\n"
        )
    previews = _previews(sources, args, options, output) if args.previews else 0

    class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=True, allow_unicode=True)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write(text.encode("utf-8"))
    bad = sum(1 for e in sources.values() if (e.get("metadata") or {}).get("error"))
    sys.stderr.write(
        f"intake-zspy catalog: {len(sources)} entr{'y' if len(sources) == 1 else 'ies'}"
        f"{f' ({bad} unreadable)' if bad else ''}"
        f"{f', {previews} previews in {args.previews}' if args.previews else ''}"
        f"{f', written to {output.url}' if output is not None else ''}\n"
    )
    return c.EXIT_OK

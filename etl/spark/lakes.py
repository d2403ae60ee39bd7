"""Where a lake is: a local (or one shared POSIX) folder, named the same on every node.

A lake is read and written by Spark *and* checked, listed, swapped in and fingerprinted by
Python on the driver. Both must see the same folder, so a lake is a folder on a file system
the driver mounts at the same path as every executor (local disk for ``local[...]``; NFS,
a FUSE-mounted bucket or a shared volume on a cluster). Object-store and HDFS URIs
(``s3a://``, ``abfss://``, ``gs://``, ``hdfs://``) are refused with a message rather than
half-supported: Python's checks would look at the local disk while Spark writes elsewhere
(once, a local folder named ``s3a:`` was written and the load reported success).

Spark is always handed ``file:`` URIs, so a cluster whose default file system is HDFS still
reads and writes the folder the driver checked.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from etl.errors import SourceError

# a URI scheme of two or more letters ("C:/" stays a path); "s3a://b/x" arrives as the
# string "s3a:/b/x" once it has been through pathlib (typer's Path options do that)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/")


class LakeLocationError(SourceError):
    """A lake location bmc cannot use (an object-store or HDFS URI)."""


def local_lake(value: str | os.PathLike[str]) -> Path:
    """The absolute local folder ``value`` names; ``file:`` URIs are accepted.

    Raises :class:`LakeLocationError` for any other URI scheme, naming what to do instead.
    """
    text = os.fspath(value)
    m = _SCHEME.match(text)
    if m is None:
        return Path(text).absolute()
    scheme = m.group(1).lower()
    if scheme == "file":
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise LakeLocationError(f"{text}: a file: URI with a host is not a local folder; "
                                    f"give the folder as a path")
        return Path(unquote(parsed.path)).absolute()
    raise LakeLocationError(
        f"{text}: {scheme}:// lakes are not supported; --db must be a folder every Spark node "
        f"sees at the same path (local disk, NFS or a mounted bucket). To use data already in "
        f"a lakehouse, see 'Inside an existing Spark session' in docs/spark.md")


def spark_uri(folder: str | os.PathLike[str]) -> str:
    """``file:///abs/folder``: what Spark is given, whatever its default file system."""
    return Path(folder).absolute().as_uri()

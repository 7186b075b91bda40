"""A small tmpfs for the tests that need a really full disk (root only: others skip)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(size_mib: int, *, prefix: str) -> Iterator[Path]:
    """A tmpfs of ``size_mib`` MiB mounted on a new directory named ``prefix...``, unmounted
    and removed afterwards; the calling test is skipped unless it runs as root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = Path(tempfile.mkdtemp(prefix=prefix))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True, capture_output=True)
        shutil.rmtree(mount_point, ignore_errors=True)

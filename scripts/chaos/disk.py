"""A node's data directory on a filesystem of its own, to fill up or turn read-only.

For the ``disk_full`` and ``read_only`` perturbations, the node's ``data`` folder is a
small ext4 filesystem in an image file of the run (``disks/nodeN.img``, sparse), mounted
through a loop device before the node starts (root only; docs/reliability.md says why
this and not tmpfs or a remount):

* **full**: the free space is taken by ballast files (``fallocate``, then plain writes
  until ``ENOSPC``); deleting them gives it back, with the node still running.
* **read-only**: ext4's own error path (``/sys/fs/ext4/<dev>/trigger_fs_error``, mounted
  ``errors=remount-ro``) turns the filesystem read-only at once, under the files the node
  has open, as a real disk error does. A plain ``mount -o remount,ro`` cannot: it is
  refused while any file is open for writing. The kernel then keeps it read-only until it
  is unmounted, so repairing it means stopping the node, ``e2fsck``, mounting again.

The filesystem has no journal and no root reserve (``-O ^has_journal -m 0``) so "full"
means full for a node running as root too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DISK_BYTES = 256 << 20
"""Size of each node's filesystem: room for hours of chaos load (a 90 s run writes < 10 MB)."""
BALLAST = ".chaos-ballast"
_TOOLS = ("mount", "umount", "mkfs.ext4", "e2fsck", "fallocate", "losetup")


class DiskError(RuntimeError):
    """The filesystem could not be made, mounted, filled or repaired."""


def available() -> str | None:
    """None when disk faults can run here, else why not (one line)."""
    if os.geteuid() != 0:
        return "disk faults mount a filesystem per node: they need root"
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        return f"disk faults need {', '.join(missing)} (Debian: e2fsprogs, util-linux, mount)"
    if not Path("/dev/loop-control").exists():
        return "disk faults need loop devices (/dev/loop-control is missing)"
    return None


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 and not (cmd[0] == "e2fsck" and done.returncode in (1, 2)):
        raise DiskError(f"{' '.join(cmd)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass(slots=True)
class NodeDisk:
    """One node's data filesystem: ``image`` mounted on ``mount``."""

    image: Path
    mount: Path
    size: int = DISK_BYTES
    mounted: bool = False

    def create(self) -> None:
        """Make the filesystem and mount it on ``mount`` (whose files move onto it)."""
        self.image.parent.mkdir(parents=True, exist_ok=True)
        with open(self.image, "wb") as f:
            f.truncate(self.size)
        _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", str(self.image))
        self.mount.mkdir(parents=True, exist_ok=True)
        existing = list(self.mount.iterdir())
        aside = self.mount.with_name(self.mount.name + ".before-mount")
        if existing:
            self.mount.rename(aside)
            self.mount.mkdir()
        self._mount()
        if existing:
            for item in aside.iterdir():
                shutil.move(str(item), self.mount / item.name)
            aside.rmdir()

    def _mount(self) -> None:
        _run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mount))
        self.mounted = True

    def device(self) -> str:
        """The loop device's name (``loop3``), from /proc/mounts."""
        target = str(self.mount.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 1 and parts[1] == target:
                return os.path.basename(parts[0])
        raise DiskError(f"{target} is not mounted")

    # -- faults -------------------------------------------------------------------------

    def fill(self) -> int:
        """Take every free byte; returns how many."""
        st = os.statvfs(self.mount)
        free = st.f_bavail * st.f_frsize
        taken = 0
        big = self.mount / BALLAST
        for size in (free, free - (1 << 20), free - (4 << 20)):
            if size > 0 and subprocess.run(
                ["fallocate", "-l", str(size), str(big)], capture_output=True, check=False
            ).returncode == 0:
                taken = size
                break
        rest = self.mount / (BALLAST + "-rest")
        chunk = b"\0" * 4096
        with contextlib.suppress(OSError), open(rest, "wb", buffering=0) as f:
            while True:
                taken += f.write(chunk)
                os.fsync(f.fileno())
        return taken

    def drain(self) -> None:
        """Give the space back."""
        for name in (BALLAST, BALLAST + "-rest"):
            (self.mount / name).unlink(missing_ok=True)

    def break_read_only(self) -> None:
        """Turn the filesystem read-only under the running node (ext4's error path)."""
        trigger = Path("/sys/fs/ext4") / self.device() / "trigger_fs_error"
        try:
            trigger.write_text("ledgerlab chaos: read_only\n")
        except OSError as exc:
            raise DiskError(f"cannot trigger a filesystem error: {exc}") from None

    def is_read_only(self) -> bool:
        try:
            fd = os.open(self.mount / ".rw-test", os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            return exc.errno == errno.EROFS
        os.close(fd)
        (self.mount / ".rw-test").unlink(missing_ok=True)
        return False

    def repair(self) -> None:
        """Unmount, check and mount again (the node must be stopped: files closed)."""
        self.unmount()
        _run("e2fsck", "-f", "-y", str(self.image))
        self._mount()

    def unmount(self) -> None:
        if self.mounted:
            _run("umount", str(self.mount))
            self.mounted = False

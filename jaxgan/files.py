"""Facts about writing files that several stages share (checkpoints, bundles, exports)."""

from __future__ import annotations

import errno


def is_disk_full(error: BaseException | None) -> bool:
    """True when `error` or an exception in its cause / context chain says the disk is full."""
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False

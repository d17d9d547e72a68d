"""Reversible attribute patches.

Every hook the detectors install goes through :class:`Patch`, so it can be undone exactly:
an attribute that was inherited is deleted again rather than pinned, and a patch that someone
else has since wrapped is left in place (our wrapper then passes straight through, because
every wrapper checks whether detection is still on).
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


class Patch:
    """Replace ``owner.name`` with ``replacement`` until :meth:`restore` is called."""

    def __init__(self, owner: Any, name: str, replacement: Any) -> None:
        self.owner = owner
        self.name = name
        self.replacement = replacement
        self._own_value: Any = _MISSING
        self.original: Any = getattr(owner, name)
        """The attribute as it was before the patch (possibly inherited)."""
        self.applied = False

    def apply(self) -> None:
        if self.applied:
            return
        self.original = getattr(self.owner, self.name)
        self._own_value = vars(self.owner).get(self.name, _MISSING)
        setattr(self.owner, self.name, self.replacement)
        self.applied = True

    def restore(self) -> None:
        if not self.applied:
            return
        self.applied = False
        if vars(self.owner).get(self.name, _MISSING) is not self.replacement:
            return  # someone wrapped us; leave their wrapper (ours passes through when off)
        if self._own_value is _MISSING:
            delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self._own_value)

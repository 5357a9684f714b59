"""A griffe extension for ``make docs``: render the docstrings' Sphinx roles in Markdown.

The docstrings cite code the Sphinx way (``:class:`~upbit_ws.Gap```, ``:meth:`events```), which
reads well in ``help()`` and in an editor. mkdocstrings renders Markdown, where a role would
show as raw text; this rewrites each role into inline code naming the object (the last part of
the path when the role asks for it with ``~``, as Sphinx does).
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|obj|data|exc|const):`~?([^`]+)`")


def _render(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    return f"`{target.rsplit('.', 1)[-1] if '`~' in match.group(0) else target}`"


class SphinxRoles(Extension):
    """Rewrite Sphinx roles in every loaded docstring."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring in place."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_render, obj.docstring.value)

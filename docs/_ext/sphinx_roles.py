"""Griffe extension: render Sphinx roles in docstrings as mkdocstrings cross-references.

gmat_sweep's numpydoc docstrings refer to other objects with Sphinx roles
(:class:`Sweep`, :func:`~gmat_sweep.grid.full_factorial`, :meth:`run`).
mkdocstrings' numpy parser leaves them as literal text, so this extension
rewrites each one, once the package is loaded, into an *optional*
cross-reference: a link when the target is documented on the site, plain
code otherwise (so an unresolvable role never fails ``mkdocs build --strict``).
Names are resolved in the scope of the object whose docstring holds them.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|func|meth|mod|attr|data|exc|obj|const|term):`(?P<body>[^`]+)`"
)
_TITLED = re.compile(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>")


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of the loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the roles of ``pkg`` and everything it defines."""
        _rewrite(pkg)


def _rewrite(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        obj.docstring.value = _ROLE.sub(lambda match: _reference(match, obj), obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:
            _rewrite(member)  # type: ignore[arg-type]


def _reference(match: re.Match[str], obj: griffe.Object) -> str:
    body = match["body"].strip()
    titled = _TITLED.fullmatch(body)
    target = titled["target"] if titled else body
    short = target.startswith("~")
    target = target.lstrip("~")
    title = target.rsplit(".", 1)[-1] if short else target
    if titled:
        title = titled["title"]
    code = f"<code>{html.escape(title)}</code>"
    if match["role"] == "term":
        return code
    return f'<autoref identifier="{html.escape(_resolve(obj, target))}" optional>{code}</autoref>'


def _resolve(obj: griffe.Object, target: str) -> str:
    head, _, rest = target.partition(".")
    try:
        base = obj.resolve(head)
    except griffe.NameResolutionError:
        return target
    return f"{base}.{rest}" if rest else base

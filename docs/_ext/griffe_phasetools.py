"""Griffe extensions used only by the docs build (mkdocs.yml loads them; not part of the package).

``TupleAssignments``
    Griffe's static analysis skips module attributes bound by tuple assignment
    (``STATUS_OK, STATUS_NONFINITE = 0, 2``), so such a name re-exported in a subpackage's
    ``__all__`` is an alias that cannot be resolved and its API page fails to render. This adds
    the names as module attributes (with their value when the right-hand side is a tuple of the
    same length).
``RestToMarkdown``
    The docstrings are numpydoc-style, written for ``help()`` and reST; mkdocstrings renders
    their text as Markdown. This rewrites the three reST idioms they use so the page reads as
    the source does: roles (``:class:`Convention``` becomes ```Convention```), literal-block
    markers (a paragraph ending in ``::`` ends in ``:``; the indented block after it is a
    code block in Markdown too), and, in module docstrings before any section, the
    "term / indented lines" overviews (the term becomes bold and its lines a code block).
The source docstrings are not changed.
"""

import ast
import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|obj|data|exc|const):`~?([^`]+)`")
_SECTION_RULE = re.compile(r"^\s*-{3,}\s*$")


class TupleAssignments(griffe.Extension):
    def on_module_members(self, *, node, mod, agent, **kwargs):
        if not isinstance(node, ast.Module):  # dynamic analysis: nothing to add
            return
        for stmt in node.body:
            if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
                continue
            target = stmt.targets[0]
            if not isinstance(target, ast.Tuple) or not all(isinstance(e, ast.Name) for e in target.elts):
                continue
            values = (stmt.value.elts if isinstance(stmt.value, ast.Tuple)
                      and len(stmt.value.elts) == len(target.elts) else [None] * len(target.elts))
            for name, value in zip(target.elts, values):
                if name.id in mod.members:
                    continue
                attribute = griffe.Attribute(
                    name.id,
                    value=None if value is None else ast.unparse(value),
                    lineno=stmt.lineno,
                    endlineno=stmt.end_lineno,
                )
                attribute.labels.add("module-attribute")
                mod.set_member(name.id, attribute)


def _overview_terms(lines):
    """Module overviews: a flush-left term directly followed by indented lines."""
    out = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        prev = lines[i - 1] if i > 0 else ""
        if (line.strip() and not line[0].isspace() and nxt.startswith("    ")
                and (not prev.strip() or prev[0].isspace())):
            if out and out[-1].strip():
                out.append("")
            out += [f"**{line.strip().rstrip(':')}**", ""]
            continue
        if line.strip() and not line[0].isspace() and prev.startswith("    ") and out and out[-1].strip():
            out.append("")  # close the code block before flush-left text
        out.append(line)
    return out


def rest_to_markdown(text, *, module=False):
    lines = _ROLE.sub(r"`\1`", text).split("\n")
    # The part before the first numpy section (a title line underlined with dashes).
    head = next((i for i in range(len(lines) - 1)
                 if lines[i].strip() and _SECTION_RULE.match(lines[i + 1])), len(lines))
    body, rest = lines[:head], lines[head:]
    if module:
        body = _overview_terms(body)
    converted = []
    for line in body + rest:
        if line.rstrip().endswith("::"):
            stripped = line.rstrip()[:-2].rstrip()
            if not stripped.strip():
                continue
            line = stripped if stripped.endswith(":") else stripped + ":"
        converted.append(line)
    return "\n".join(converted)


class RestToMarkdown(griffe.Extension):
    def on_object(self, *, obj, **kwargs):
        if obj.is_alias or obj.docstring is None:
            return
        obj.docstring.value = rest_to_markdown(obj.docstring.value, module=obj.is_module)

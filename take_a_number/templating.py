"""Tempita templates: compiled once, escaped by default, pages inside the layout, forms filled."""

import functools
import html
import os

import tempita
from formencode import htmlfill


@functools.cache
def _compile(code, mode):
    return compile(code, "<template>", mode)


class Template(tempita.HTMLTemplate):
    """An auto-escaping Tempita template whose expressions are compiled once.

    Tempita compiles each expression's source text again on every render;
    caching the code objects, and escaping by the shortest path, makes
    rendering several times faster. Errors still get Tempita's messages.
    """

    def _eval(self, code, ns, pos):
        try:
            return eval(_compile(code.strip(), "eval"), self.default_namespace, ns)
        except Exception:
            return super()._eval(code, ns, pos)  # raises again, with the line

    def _exec(self, code, ns, pos):
        return super()._exec(_compile(code, "exec"), ns, pos)

    def _repr(self, value, pos):
        if value is None:
            return ""
        if hasattr(value, "__html__"):
            return value.__html__()
        return html.escape(value if isinstance(value, str) else str(value), quote=True)


class Templates:
    """Every template in a directory, compiled once at start-up."""

    def __init__(self, directory):
        self._templates = {
            name: Template.from_filename(os.path.join(directory, name), encoding="utf-8")
            for name in sorted(os.listdir(directory))
            if name.endswith(".html")
        }

    def page(self, name, values):
        """The template ``name`` rendered as the ``body`` of ``layout.html``."""
        body = tempita.html(self._templates[name].substitute(dict(values)))
        return self._templates["layout.html"].substitute(dict(values, body=body))


def fill_form(text, defaults, errors):
    """A page's forms filled from ``defaults``, each field in ``errors`` marked with its message."""
    return htmlfill.render(
        text,
        defaults=defaults,
        errors=errors or {},
        auto_error_formatter=htmlfill.escape_formatter,
        error_formatters={"default": _error_formatter},
        force_defaults=False,
    )


def _error_formatter(error):
    return f'<span class="error-message" role="alert">{htmlfill.html_quote(error)}</span>'

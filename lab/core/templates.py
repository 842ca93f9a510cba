"""The templates/ folder rendered with Jinja: StrictUndefined (a missing value
is an error, never an empty string), no autoescape (nginx and YAML, not HTML),
trailing newlines kept. Every stage that writes from a template uses this one
environment."""

from __future__ import annotations

import functools
from typing import Any

from lab.core.errors import LabError
from lab.core.resources import templates_dir


@functools.cache
def _environment() -> Any:
    """One environment per process: Jinja compiles each template once (a class's READMEs, hundreds of
    renderings, took 15 s compiling the same template again)."""
    import shlex

    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["sh_quote"] = shlex.quote      # a value inside a shell command a README shows
    return env


def render_text(template: str, **context: Any) -> str:
    """Render one template; a missing value raises LabError naming it."""
    import jinja2

    try:
        return str(_environment().get_template(template).render(template=template, **context))
    except jinja2.UndefinedError as e:
        raise LabError(f"template {template} needs a value that was not given: {e.message}") from None

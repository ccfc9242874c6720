"""The one place a :class:`~face_studio.errors.UserError` becomes a ``gr.Error``, and what any error may show a
visitor: the message reaches the page or ``gradio_client`` with no traceback, and the server keeps serving.

A visitor never sees a server path or a whole hostile input echoed back: :func:`visitor_message` replaces every
absolute path with its last part (``/srv/app/outputs/x.png`` → ``x.png``), shortens each quoted value to
``MAX_QUOTED`` characters and the whole message to ``MAX_MESSAGE``. :func:`to_gr_error` applies it to our own
messages; :func:`install_visitor_errors` applies it to every error payload Gradio sends (its own, such as
"Cannot move /cwd/… to the gradio cache dir", included), because ``show_error=True`` shows those too.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import TypeVar

import gradio as gr

from face_studio.errors import UserError

F = TypeVar("F", bound=Callable)
MAX_MESSAGE = 600  # characters of an error message a visitor sees
MAX_QUOTED = 60  # characters of one echoed (quoted) value
_STOP = r"\s'\"`,;:()<>\[\]{}|*?"
# An absolute path: a "/" that does not follow a word, a dot, a colon or another "/" (so not "1/4" or a URL).
_ABSOLUTE_PATH = re.compile(rf"(?<![\w.:/~-])(?:/[^{_STOP}/]+)+/?")
_QUOTED = re.compile(rf"'[^'\n]{{{MAX_QUOTED + 1},}}'|\"[^\"\n]{{{MAX_QUOTED + 1},}}\"")


def _last_part(match: re.Match) -> str:
    parts = [p for p in match.group(0).split("/") if p]
    return parts[-1] if parts else match.group(0)


def _shorten_quote(match: re.Match) -> str:
    text = match.group(0)
    return f"{text[0]}{text[1:MAX_QUOTED - 1]}…{text[0]} ({len(text) - 2:,} characters)"


def visitor_message(text: str) -> str:
    """``text`` as a visitor may see it: no absolute server path, no long echo of their own input."""
    text = _QUOTED.sub(_shorten_quote, _ABSOLUTE_PATH.sub(_last_part, str(text)))
    if len(text) > MAX_MESSAGE:  # keep the start (what was wrong) and the end (what to do)
        text = f"{text[:MAX_MESSAGE - 160]} … {text[-150:]}"
    return text


def to_gr_error(err: UserError) -> gr.Error:
    """``raise to_gr_error(err) from None`` inside a handler."""
    return gr.Error(visitor_message(str(err)), print_exception=False)


def install_visitor_errors() -> None:
    """Pass every error message Gradio sends a visitor through :func:`visitor_message` (idempotent).

    Gradio builds them in ``gradio.utils.error_payload``; its queue imported the function by name, so both
    places are replaced."""
    from gradio import queueing, utils

    original = getattr(utils.error_payload, "__wrapped__", utils.error_payload)

    @functools.wraps(original)
    def error_payload(error, show_error):
        content = original(error, show_error)
        if isinstance(content.get("error"), str):
            content["error"] = visitor_message(content["error"])
        return content

    utils.error_payload = error_payload
    queueing.error_payload = error_payload


def user_errors(fn: F) -> F:
    """Decorate a Gradio handler (plain, generator or async) so a ``UserError`` becomes a ``gr.Error``.

    ``functools.wraps`` keeps the signature, so Gradio still sees ``progress=gr.Progress()`` parameters.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as err:
                raise to_gr_error(err) from None
        return gen_wrapper  # type: ignore[return-value]
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except UserError as err:
                raise to_gr_error(err) from None
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            raise to_gr_error(err) from None
    return wrapper  # type: ignore[return-value]

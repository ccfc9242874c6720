"""The one place a :class:`~face_studio.errors.UserError` becomes a ``gr.Error``: the message reaches the
page or ``gradio_client`` as is, no traceback is printed, and the server keeps serving."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TypeVar

import gradio as gr

from face_studio.errors import UserError

F = TypeVar("F", bound=Callable)


def to_gr_error(err: UserError) -> gr.Error:
    """``raise to_gr_error(err) from None`` inside a handler."""
    return gr.Error(str(err), print_exception=False)


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

"""Hostile requests to the server (issue #11): each is refused with this message (and, for paths, without
serving a file from outside the allowed folders). For paths, ``args[0]`` is the raw request path, a template
filled by tests/server/test_security.py: ``{mount}`` is /studio or /parser/<model id>, ``{target}`` a file
just outside it, ``{secret}`` an absolute path outside every allowed folder."""

from __future__ import annotations

from tests.bad_input import BadInput

MOUNTS = "/studio/ and /parser/ mounts"
FILE_ROUTE = "/gradio_api/file="
UPLOAD = "upload (any view, API)"
LOGIN = "login (--auth)"
QUEUE = "API generate / parse (queue)"
SERVE = "face-studio serve"
NOT_FOUND = "Not Found"  # 404: what the user sees; the test also checks that nothing outside was served
NOT_ALLOWED = "File not allowed"  # 403, Gradio's own answer


def _mount(tried: str, path: str) -> BadInput:
    return BadInput(MOUNTS, tried, NOT_FOUND, args=(path,), exit_code=None)


def _file(tried: str, path: str) -> BadInput:
    return BadInput(FILE_ROUTE, tried, NOT_ALLOWED, args=(path,), exit_code=None)


BAD_INPUTS: list[BadInput] = [
    _mount("../ up one folder", "{mount}/../{target}"),
    _mount("%2e%2e/ (encoded dots)", "{mount}/%2e%2e/{target}"),
    _mount("..%2f (encoded slash)", "{mount}/..%2f{target}"),
    _mount("%2e%2e%2f (all encoded)", "{mount}/%2e%2e%2f{target}"),
    _mount("%252e%252e/ (double-encoded)", "{mount}/%252e%252e/{target}"),
    _mount("..\\ (backslash)", "{mount}/..\\{target}"),
    _mount("..%5c (encoded backslash)", "{mount}/..%5c{target}"),
    _mount("....// (doubled)", "{mount}/....//{target}"),
    _mount("js/../../ (deeper)", "{mount}/js/../../{target}"),
    _mount("an absolute path", "{mount}//etc/passwd"),
    _mount("%2fetc%2fpasswd (encoded absolute path)", "{mount}/%2fetc%2fpasswd"),
    _mount("a NUL byte", "{mount}/%00../{target}"),
    _file("/etc/passwd", "/gradio_api/file=/etc/passwd"),
    _file("a file outside every allowed folder", "/gradio_api/file={secret}"),
    _file("the same, URL-encoded", "/gradio_api/file={quoted}"),
    _file("a file in the working folder", "/gradio_api/file={repo}/pyproject.toml"),
    _file("the parser export through file= (it is served only at /parser/)", "/gradio_api/file={model}"),
    _file("../ from the upload cache", "/gradio_api/file=../../../../../../etc/passwd"),
    _file("the newer /gradio_api/file/ route", "/gradio_api/file/etc/passwd"),
    BadInput(UPLOAD, "a file of 64 MB + 1 byte", "File size exceeded maximum allowed size of 67108864 bytes",
             exit_code=None),
    BadInput(LOGIN, "a 6th wrong password in a row from one address",
             "Too many wrong logins from your address: try again in 1 s.", exit_code=None),
    BadInput(QUEUE, "a generate while the GPU queue is full (before any job has finished)",
             "The GPU queue is full (3 waiting, under a minute of work ahead): try again in a minute",
             exit_code=None),
    BadInput(QUEUE, "a generate while the GPU queue is full of 150-step 1024² generates (none finished yet)",
             "The GPU queue is full (3 waiting, about 210 min of work ahead): try again in about 210 min",
             exit_code=None),
    BadInput(QUEUE, "a generate while the GPU queue is full (run times known)",
             "The GPU queue is full (3 waiting, under a minute of work ahead): try again in a minute",
             exit_code=None),
    BadInput(QUEUE, "a parse while the parse queue is full",
             "The parse queue is full (0 waiting): try again in a few seconds, or parse in the browser",
             exit_code=None),
]


# ``{parser}`` / ``{live}``: a copy of the tiny export, damaged as ``tried`` says (tests/server/test_serve_checks.py).
SERVE_CASES: list[BadInput] = [
    BadInput(SERVE, "--parser: onnx/model_quantized.onnx cut short", "onnx/model_quantized.onnx: 2048 bytes, "
             "manifest says", ("serve", "--port", "0", "--parser", "{parser}")),
    BadInput(SERVE, "--parser: onnx/model_quantized.onnx overwritten, same size",
             "onnx/model_quantized.onnx: sha256 mismatch", ("serve", "--port", "0", "--parser", "{parser}")),
    BadInput(SERVE, "--parser: onnx/model.onnx deleted", "onnx/model.onnx: missing",
             ("serve", "--port", "0", "--parser", "{parser}")),
    BadInput(SERVE, "--live-parser: a damaged export", "Export it again with `face-studio export --model "
             "STUDENT_DIR", ("serve", "--port", "0", "--parser", "{parser}", "--live-parser", "{live}")),
    BadInput(SERVE, "--live-parser: a 5-label export", "predicts 5 classes, not the 19 face labels",
             ("serve", "--port", "0", "--parser", "{parser}", "--live-parser", "{live}")),
    BadInput(SERVE, "--max-batch 1000000", "--max-batch must be 1…16 (got 1000000)",
             ("serve", "--port", "0", "--max-batch", "1000000")),
]
BAD_INPUTS += SERVE_CASES


def by_surface(surface: str) -> list[BadInput]:
    return [case for case in BAD_INPUTS if case.surface == surface]


def expect(surface: str, tried_starts: str) -> str:
    """The message fragment of the one record of ``surface`` whose ``tried`` starts so."""
    [case] = [c for c in by_surface(surface) if c.tried.startswith(tried_starts)]
    return case.expect

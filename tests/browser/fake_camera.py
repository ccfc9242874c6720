"""A fake camera for headless Chromium: skimage's astronaut as a Y4M clip and the flags that play it.

Chromium plays ``--use-file-for-fake-video-capture=FILE.y4m`` in a loop as the camera; the page must be a
secure context (http://127.0.0.1 is) and the context granted the "camera" permission.
"""

from __future__ import annotations

from pathlib import Path

FAKE_CAMERA_FLAGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def astronaut_y4m(path: Path, size: tuple[int, int] = (640, 480), frames: int = 10) -> Path:
    """Write the astronaut at ``size`` as a ``frames``-frame 4:2:0 Y4M clip (30 FPS) and return ``path``."""
    from PIL import Image
    from skimage import data

    width, height = size
    ycbcr = Image.fromarray(data.astronaut()).resize(size, Image.BILINEAR).convert("YCbCr")
    y, cb, cr = ycbcr.split()
    half = (width // 2, height // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half, Image.BOX).tobytes() + cr.resize(half, Image.BOX).tobytes()
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


def camera_args(y4m: Path) -> list[str]:
    """Chromium flags that make ``y4m`` the camera, granted without a prompt."""
    return [*FAKE_CAMERA_FLAGS, f"--use-file-for-fake-video-capture={y4m}"]

"""A fake camera for headless Chromium: skimage's astronaut as a Y4M clip and the flags that play it.

Chromium plays ``--use-file-for-fake-video-capture=FILE.y4m`` in a loop as the camera; the page must be a
secure context (http://127.0.0.1 is) and the context granted the "camera" permission.
"""

from __future__ import annotations

from pathlib import Path

FAKE_CAMERA_FLAGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def astronaut_y4m(path: Path, size: tuple[int, int] = (640, 480), frames: int = 10, noise: float = 0.0) -> Path:
    """Write the astronaut at ``size`` as a ``frames``-frame 4:2:0 Y4M clip (30 FPS) and return ``path``.

    ``noise``: a still scene seen by a real sensor — each frame gets its own Gaussian noise of this standard
    deviation (grey levels, seeded); 0 gives identical frames."""
    import numpy as np
    from PIL import Image
    from skimage import data

    still = np.asarray(Image.fromarray(data.astronaut()).resize(size, Image.BILINEAR), dtype=np.float32)
    rng = np.random.default_rng(0)
    clip = [f"YUV4MPEG2 W{size[0]} H{size[1]} F30:1 Ip A1:1 C420jpeg\n".encode()]
    for i in range(frames):
        if i and not noise:
            clip.append(clip[1])
            continue
        pixels = still + rng.normal(0, noise, still.shape) if noise else still
        clip.append(y4m_frame(Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))))
    path.write_bytes(b"".join(clip))
    return path


def y4m_frame(image) -> bytes:
    """One 4:2:0 Y4M frame (``FRAME`` + Y, then U and V at half size) of an RGB PIL image."""
    from PIL import Image

    width, height = image.size
    y, cb, cr = image.convert("YCbCr").split()
    half = (width // 2, height // 2)
    return b"FRAME\n" + y.tobytes() + cb.resize(half, Image.BOX).tobytes() + cr.resize(half, Image.BOX).tobytes()


def camera_args(y4m: Path) -> list[str]:
    """Chromium flags that make ``y4m`` the camera, granted without a prompt."""
    return [*FAKE_CAMERA_FLAGS, f"--use-file-for-fake-video-capture={y4m}"]

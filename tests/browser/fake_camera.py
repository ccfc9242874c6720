"""A fake camera for headless Chromium: skimage's astronaut (or a synthetic face moving across a backdrop) as a
Y4M clip, and the flags that play it.

Chromium plays ``--use-file-for-fake-video-capture=FILE.y4m`` in a loop as the camera; the page must be a
secure context (http://127.0.0.1 is) and the context granted the "camera" permission.
"""

from __future__ import annotations

from pathlib import Path

MARK = 16  # px: moving_face_y4m's frame marker (block side)
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


def moving_face_y4m(path: Path, size: tuple[int, int] = (640, 480), frames: int = 60, side: int = 240,
                    seed: int = 4, y: int = 120, x_range: tuple[int, int] = (0, 300)) -> tuple[Path, list[list[int]]]:
    """A synthetic face (``face_studio.training.synth``, ``seed``, ``side`` px square) on a flat backdrop, moving
    from ``x_range[0]`` to ``x_range[1]`` over the first half of ``frames`` and back over the second (the clip
    loops without a jump, like a real head); returns ``path`` and each frame's true face square [x0, y0, x1, y1].

    Each frame carries its number for whoever reads the pixels back (``frame_number``): a black strip along the
    bottom, MARK px high, with bit k of the number as a white MARK×MARK block at x = MARK·k."""
    from PIL import ImageDraw

    from tests.faces.conftest import scene

    half = frames // 2
    assert frames < 2 ** (size[0] // MARK) and y + side <= size[1] - MARK
    boxes, clip = [], [f"YUV4MPEG2 W{size[0]} H{size[1]} F30:1 Ip A1:1 C420jpeg\n".encode()]
    for i in range(frames):
        t = i / half if i <= half else (frames - i) / (frames - half)
        image, _truth, [box] = scene(*size, [(seed, round(x_range[0] + (x_range[1] - x_range[0]) * t), y, side)])
        draw = ImageDraw.Draw(image)
        draw.rectangle([0, size[1] - MARK, size[0] - 1, size[1] - 1], fill=(0, 0, 0))
        for bit in range(frames.bit_length()):
            if i >> bit & 1:
                draw.rectangle([MARK * bit, size[1] - MARK, MARK * (bit + 1) - 1, size[1] - 1], fill=(255, 255, 255))
        clip.append(y4m_frame(image))
        boxes.append(box)
    path.write_bytes(b"".join(clip))
    return path, boxes


# JS for a page: the frame number of moving_face_y4m's RGBA pixels (`rgba`, `width`, `height` in scope).
FRAME_NUMBER_JS = f"""(() => {{
    const row = (height - {MARK} / 2) * width;
    let n = 0;
    for (let bit = 0; ({MARK} * bit + {MARK} / 2) < width; bit++) {{
        if (rgba[(row + {MARK} * bit + {MARK} / 2) * 4] > 128) n |= 1 << bit;
    }}
    return n;
}})()"""


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

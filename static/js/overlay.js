// Drawing a label map, for every view: colour overlay over the photo (background stays uncoloured, as in
// face_studio/preprocess.py::overlay), per-class visibility, one isolated class; the translucent colour layer
// drawn over video frames (live mode); the opaque colour mask and the cut-out (downloads).

const DIM = 0.35; // brightness of what is outside the isolated class

/**
 * Blend the classes that are shown over the photo into an ImageData.
 * `visible[c]` false hides class c; with `isolated` set only that class is coloured and the rest dimmed.
 */
export function overlayImage({ rgba, labels, width, height, palette, opacity, visible, isolated = null }) {
  const out = new ImageData(width, height);
  const px = out.data;
  for (let i = 0, p = 0; i < labels.length; i++, p += 4) {
    const c = labels[i];
    const shown = visible[c] && (isolated === null ? c > 0 : c === isolated);
    const dim = isolated !== null && c !== isolated ? DIM : 1;
    let r = rgba[p] * dim, g = rgba[p + 1] * dim, b = rgba[p + 2] * dim;
    if (shown) {
      const [cr, cg, cb] = palette[c];
      r = r * (1 - opacity) + cr * opacity;
      g = g * (1 - opacity) + cg * opacity;
      b = b * (1 - opacity) + cb * opacity;
    }
    px[p] = r; px[p + 1] = g; px[p + 2] = b; px[p + 3] = 255;
  }
  return out;
}

/**
 * The label map as a translucent colour layer: each class in the palette at `opacity`, background (and any id
 * without a colour) transparent. Drawn over each video frame in live mode; `overlayImage` is the same blend
 * computed into the photo.
 */
export function colourLayer(labels, width, height, palette, opacity) {
  const out = new ImageData(width, height);
  const alpha = Math.round(opacity * 255);
  for (let i = 0, p = 0; i < labels.length; i++, p += 4) {
    const c = labels[i];
    if (c === 0 || !palette[c]) continue;
    out.data[p] = palette[c][0]; out.data[p + 1] = palette[c][1]; out.data[p + 2] = palette[c][2];
    out.data[p + 3] = alpha;
  }
  return out;
}

/** The label map in the shared palette (opaque RGB): the colour-mask download. */
export function colourMask(labels, width, height, palette) {
  const out = new ImageData(width, height);
  for (let i = 0, p = 0; i < labels.length; i++, p += 4) {
    const [r, g, b] = palette[labels[i]];
    out.data[p] = r; out.data[p + 1] = g; out.data[p + 2] = b; out.data[p + 3] = 255;
  }
  return out;
}

/** The photo where the label is one of `keep` (a boolean per class), transparent elsewhere. */
export function cutout(rgba, labels, width, height, keep) {
  const out = new ImageData(width, height);
  for (let i = 0, p = 0; i < labels.length; i++, p += 4) {
    if (!keep[labels[i]]) continue;
    out.data[p] = rgba[p]; out.data[p + 1] = rgba[p + 1]; out.data[p + 2] = rgba[p + 2]; out.data[p + 3] = 255;
  }
  return out;
}

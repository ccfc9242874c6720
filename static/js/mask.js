// The edit mask in the page: classes ∪ painted strokes − erased strokes, and a preview of the server's
// grow (3×3 max/min filter repeated, exactly as webapp/editing/masks.py::grow with Pillow).

/** 1 where the label is selected or painted, 0 where erased or unselected. */
export function combineMask(labels, selected, painted, erased) {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = (selected[labels[i]] || painted[i]) && !erased[i] ? 1 : 0;
  return out;
}

function filter3(mask, width, height, grow) {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    const y0 = Math.max(0, y - 1), y1 = Math.min(height - 1, y + 1);
    for (let x = 0; x < width; x++) {
      const x0 = Math.max(0, x - 1), x1 = Math.min(width - 1, x + 1);
      let v = grow ? 0 : 1;
      for (let yy = y0; yy <= y1 && v === (grow ? 0 : 1); yy++) {
        for (let xx = x0; xx <= x1; xx++) {
          const m = mask[yy * width + xx];
          if (grow ? m : !m) { v = grow ? 1 : 0; break; }
        }
      }
      out[y * width + x] = v;
    }
  }
  return out;
}

/** Grow (px > 0) or shrink (px < 0) by |px| pixels. */
export function growMask(mask, width, height, px) {
  let out = mask;
  for (let i = 0; i < Math.abs(px); i++) out = filter3(out, width, height, px > 0);
  return out;
}

export function coverage(mask) {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i] ? 1 : 0; // face-numbered masks hold k, not 1
  return n / mask.length;
}

/** Paint a filled disc of `radius` into `layer` with `value` (and clear it from `other`). */
export function stamp(layer, other, width, height, cx, cy, radius, value = 1) {
  const r2 = radius * radius;
  for (let y = Math.max(0, Math.floor(cy - radius)); y <= Math.min(height - 1, Math.ceil(cy + radius)); y++) {
    for (let x = Math.max(0, Math.floor(cx - radius)); x <= Math.min(width - 1, Math.ceil(cx + radius)); x++) {
      if ((x - cx) ** 2 + (y - cy) ** 2 <= r2) { layer[y * width + x] = value; other[y * width + x] = 0; }
    }
  }
}

/**
 * The face-numbered mask (issue 15): value k where face k regenerates, 0 = keep. A pixel is face k's when it is
 * painted for k (`painted` holds face numbers), or owned by k (`owner`) with its label ticked for k
 * (`chosen.get(k)` is a boolean per label id); erased pixels and faces not chosen are 0.
 */
export function faceMask(labels, owner, chosen, painted, erased) {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    if (erased[i]) continue;
    const p = painted[i];
    if (p && chosen.has(p)) out[i] = p;
    else if (owner[i] && chosen.get(owner[i])?.[labels[i]]) out[i] = owner[i];
  }
  return out;
}

// Faces anywhere, browser side: the JS twin of face_studio/faces/anchors.py, geometry.py and the pure part of
// detector.py. tests/browser/test_faces_twin.py holds the two to the same numbers on the same detector outputs
// and images: decode, NMS, boxes, crops, pasted label and owner maps.
//
// Every constant (detector files and input sizes, anchor layouts, thresholds, the cap, crop framing, tiles)
// comes from static/faces.json, which the set-up writes from face_studio/faces/spec.py: nothing is copied here.
//
// Numbers: where the Python reference computes in float32 (numpy arrays of the detector's outputs) this file
// rounds with Math.fround at the same steps, and it sums like numpy, so thresholds and ties fall the same way.
//
// Pipeline (static/js/worker.js runs it): detectFaces (letterbox → detector → decode, for the whole image and
// its tiles → weighted NMS → image pixels → order) → selectFaces (mode, cap) → per face: cropBox → cropRgba →
// parse like a photo → paste into the full-size label map and owner map.
import { resizeBilinearPIL } from './segment.js';

const f32 = Math.fround;

/** Fetch static/faces.json; rejects with a line naming the set-up step. */
export async function loadFacesSpec(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`could not read the face-detector settings ${url} (${err.message}): run scripts/setup.sh`);
  }
  if (!response.ok) {
    throw new Error(`the face-detector settings ${url} are missing (HTTP ${response.status}): run scripts/setup.sh`);
  }
  let spec;
  try {
    spec = await response.json();
  } catch {
    spec = null;
  }
  if (!spec?.detectors?.[spec.detector]?.onnx) {
    throw new Error(`the face-detector settings ${url} are not what this page expects: run scripts/setup.sh`);
  }
  return spec;
}

/** The detector `spec` runs (an entry of spec.detectors). */
export const detectorOf = (spec) => spec.detectors[spec.detector];

/** floor(v + 0.5): the one rounding both languages use for pixel edges. */
export const roundHalfUp = (v) => Math.floor(v + 0.5);

/** Python's round(x, n) for the values we round (float32-derived, |x| < 1e5, n ≤ 4): exact ties go to even. */
export function pyRound(x, n) {
  const scale = 10 ** n;
  const twice = x * 2 * scale; // exact for such x: a tie is an odd integer here
  if (Number.isInteger(twice) && Math.abs(twice % 2) === 1) {
    const lo = Math.floor(twice / 2);
    return (lo % 2 === 0 ? lo : lo + 1) / scale;
  }
  return Number(x.toFixed(n));
}

/** numpy's float64 sum of a 1-D array (pairwise, 8 accumulators), for the same last bits. */
export function npSum(values) {
  const n = values.length;
  if (n < 8) {
    let s = 0; // numpy starts from -0.0 only for empty float arrays; 0 is the same here
    for (let i = 0; i < n; i++) s += values[i];
    return s;
  }
  if (n <= 128) {
    const r = values.slice(0, 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += values[i + j];
    let s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) s += values[i];
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return npSum(values.slice(0, half)) + npSum(values.slice(half));
}

/** (num_anchors × 2) float32 anchor centres [x, y]: layer by layer, row by row, cell by cell, per_cell each. */
export function anchors(detector) {
  const out = new Float32Array(2 * detector.num_anchors);
  let i = 0;
  for (const { grid, per_cell: perCell } of detector.layers) {
    for (let y = 0; y < grid; y++) {
      for (let x = 0; x < grid; x++) {
        for (let a = 0; a < perCell; a++) { out[i++] = (x + 0.5) / grid; out[i++] = (y + 0.5) / grid; }
      }
    }
  }
  return out;
}

/** Where a width×height image sits in the detector's size² input (geometry.letterbox_geometry). */
export function letterboxGeometry(width, height, size) {
  const scale = size / Math.max(width, height);
  const w = Math.min(size, Math.max(1, roundHalfUp(width * scale)));
  const h = Math.min(size, Math.max(1, roundHalfUp(height * scale)));
  return { size, left: Math.floor((size - w) / 2), top: Math.floor((size - h) / 2), width: w, height: h,
    imageWidth: width, imageHeight: height };
}

/**
 * The detector input for RGBA pixels: (1, 3, size, size) float32 in [-1, 1] — the image resized (Pillow
 * BILINEAR) into the centre of a black square — and where the image went. Returns {pixels, box}.
 */
export function letterbox(rgba, width, height, size) {
  const box = letterboxGeometry(width, height, size);
  const rgb = resizeBilinearPIL(rgba, width, height, box.width, box.height, 4);
  const plane = size * size;
  const pixels = new Float32Array(3 * plane).fill(-1); // black: 0 / 127.5 - 1
  const value = Float32Array.from({ length: 256 }, (_, v) => f32(f32(v / 127.5) - 1)); // numpy's float32 steps
  for (let y = 0; y < box.height; y++) {
    for (let x = 0; x < box.width; x++) {
      const s = (y * box.width + x) * 3, o = (y + box.top) * size + x + box.left;
      for (let c = 0; c < 3; c++) pixels[c * plane + o] = value[rgb[s + c]];
    }
  }
  return { pixels, box };
}

/** Normalised input coordinates → image pixels (float64, as Letterbox.to_image), plus an offset. */
function toImage(box, px, py, [ox, oy]) {
  return [(px * box.size - box.left) * (box.imageWidth / box.width) + ox,
    (py * box.size - box.top) * (box.imageHeight / box.height) + oy];
}

/** MediaPipe's score: sigmoid of the logit clipped to [-100, 100], as float32. */
const sigmoid = (logit) => f32(1 / (1 + Math.exp(-Math.min(Math.max(logit, -100), 100))));

/**
 * Raw outputs (N × 16 regressors, N logits) → detections scoring ≥ threshold, in anchor order, normalised to
 * the detector's input: [{box: [x0, y0, x1, y1], score, keypoints: [[x, y] × 6]}] (float32 values).
 */
export function decode(regressors, classificators, detector, threshold, anchorList = anchors(detector)) {
  const size = f32(detector.input_size);
  const limit = f32(threshold);
  const out = [];
  for (let i = 0; i < detector.num_anchors; i++) {
    const score = sigmoid(classificators[i]);
    if (!(score >= limit)) continue;
    const r = i * 16, ax = anchorList[2 * i], ay = anchorList[2 * i + 1];
    const reg = (j) => f32(regressors[r + j] / size);
    const cx = f32(ax + reg(0)), cy = f32(ay + reg(1));
    const hw = f32(reg(2) / 2), hh = f32(reg(3) / 2);
    const keypoints = [];
    for (let k = 0; k < 6; k++) keypoints.push([f32(ax + reg(4 + 2 * k)), f32(ay + reg(5 + 2 * k))]);
    out.push({ box: [f32(cx - hw), f32(cy - hh), f32(cx + hw), f32(cy + hh)], score, keypoints });
  }
  return out;
}

/** Intersection over union of two [x0, y0, x1, y1] boxes, in float32 like anchors.iou (0 when empty). */
export function iou(a, b) {
  const ix = Math.max(f32(Math.min(a[2], b[2]) - Math.max(a[0], b[0])), 0);
  const iy = Math.max(f32(Math.min(a[3], b[3]) - Math.max(a[1], b[1])), 0);
  const inter = f32(ix * iy);
  const area = f32(f32(a[2] - a[0]) * f32(a[3] - a[1]));
  const areas = f32(f32(b[2] - b[0]) * f32(b[3] - b[1]));
  const union = f32(f32(area + areas) - inter);
  return union > 0 ? f32(inter / union) : 0;
}

/**
 * MediaPipe's weighted NMS (anchors.weighted_nms): take the best remaining detection (score descending, ties
 * by index), gather every remaining one overlapping it by IoU > `threshold` (itself included), output their
 * score-weighted mean box and keypoints with the best one's score; repeat.
 */
export function weightedNms(detections, threshold) {
  const limit = f32(threshold); // numpy compares a float32 array with a Python float in float32
  let order = detections.map((_, i) => i).sort((a, b) => detections[b].score - detections[a].score || a - b);
  const kept = [];
  while (order.length) {
    const best = detections[order[0]];
    let group = order.filter((i) => iou(best.box, detections[i].box) > limit);
    if (!group.length || group[0] !== order[0]) group = [order[0], ...group.filter((i) => i !== order[0])];
    const weights = group.map((i) => detections[i].score);
    const total = npSum(weights);
    const mean = (get) => {
      let s = 0;
      group.forEach((i, g) => { s += get(detections[i]) * weights[g]; });
      return f32(s / total);
    };
    kept.push({
      box: [0, 1, 2, 3].map((j) => mean((d) => d.box[j])),
      score: best.score,
      keypoints: best.keypoints.map((_, k) => [mean((d) => d.keypoints[k][0]), mean((d) => d.keypoints[k][1])]),
    });
    const grouped = new Set(group);
    order = order.filter((i) => !grouped.has(i));
  }
  return kept;
}

/**
 * Overlapping square tiles [x0, y0, x1, y1] of a big image, searched for faces too small for the whole-image
 * letterbox (geometry.tiles): per tile level, side = round(level × longer side) clipped to the shorter side,
 * neighbours sharing `tileOverlap` of a tile, the last one ending at the edge. Levels whose side is under
 * `minSide` or not smaller than the longer side are skipped.
 */
export function tiles(width, height, minSide, spec) {
  const out = [];
  const longer = Math.max(width, height);
  for (const fraction of spec.tileLevels) {
    const side = Math.min(roundHalfUp(fraction * longer), width, height);
    if (side < minSide || side >= longer) continue;
    const step = Math.max(1, roundHalfUp(side * (1 - spec.tileOverlap)));
    const starts = (extent) => {
      const found = [];
      for (let v = 0; v <= extent - side; v += step) found.push(v);
      if (found[found.length - 1] + side < extent) found.push(extent - side);
      return found;
    };
    for (const y of starts(height)) for (const x of starts(width)) out.push([x, y, x + side, y + side]);
  }
  return out;
}

/** Faces by score descending (ties: x0, then y0): face k is numbered k + 1 everywhere. */
export function orderFaces(faces) {
  return [...faces].sort((a, b) => b.score - a.score || a.box[0] - b.box[0] || a.box[1] - b.box[1]);
}

/**
 * Every face in RGBA pixels, in image pixels, ordered (detector.FaceDetector.detect). `run(pixels)` runs the
 * detector on a (1, 3, S, S) input and resolves to {regressors, classificators} (flat arrays).
 * Resolves to {faces: [{box, score, keypoints}], inputs} (inputs: how many detector runs, tiles included).
 */
export async function detectFaces(rgba, width, height, spec, run, anchorList) {
  const detector = detectorOf(spec);
  const list = anchorList || anchors(detector);
  const regions = [[0, 0, width, height], ...(spec.smallFaces === 'tiles' ? tiles(width, height, detector.input_size, spec) : [])];
  const found = [];
  for (const [x0, y0, x1, y1] of regions) {
    const whole = x0 === 0 && y0 === 0 && x1 === width && y1 === height;
    const pixels = whole ? rgba : cropRgba(rgba, width, height, [x0, y0, x1, y1]);
    const { pixels: input, box } = letterbox(pixels, x1 - x0, y1 - y0, detector.input_size);
    const { regressors, classificators } = await run(input);
    for (const d of decode(regressors, classificators, detector, spec.scoreThreshold, list)) {
      const [bx0, by0] = toImage(box, d.box[0], d.box[1], [x0, y0]);
      const [bx1, by1] = toImage(box, d.box[2], d.box[3], [x0, y0]);
      found.push({
        box: [bx0, by0, bx1, by1].map(f32), score: d.score,
        keypoints: d.keypoints.map(([px, py]) => toImage(box, px, py, [x0, y0]).map(f32)),
      });
    }
  }
  const faces = [];
  for (const d of weightedNms(found, spec.nmsIou)) {
    const cx0 = Math.max(d.box[0], 0), cy0 = Math.max(d.box[1], 0);
    const cx1 = Math.min(d.box[2], width), cy1 = Math.min(d.box[3], height);
    if (cx1 - cx0 < spec.minFacePx || cy1 - cy0 < spec.minFacePx) continue; // too small, or outside
    faces.push({ box: d.box.map((v) => pyRound(v, 2)), score: pyRound(d.score, 4),
      keypoints: d.keypoints.map(([x, y]) => [pyRound(x, 2), pyRound(y, 2)]) });
  }
  return { faces: orderFaces(faces), inputs: regions.length };
}

const boxArea = ([x0, y0, x1, y1]) => Math.max(x1 - x0, 0) * Math.max(y1 - y0, 0);

/**
 * Apply the mode and the cap to ordered faces (detector.select): 'off' → none, 'largest' → the largest box
 * (ties: the higher score, then the first), 'auto' → all, at most `maxFaces`. Returns {faces, note}.
 */
export function selectFaces(ordered, mode, maxFaces) {
  if (mode === 'off' || !ordered.length) return { faces: [], note: null };
  if (mode === 'largest') {
    let best = ordered[0];
    for (const f of ordered) {
      const a = boxArea(f.box), b = boxArea(best.box);
      if (a > b || (a === b && f.score > best.score)) best = f;
    }
    return { faces: [best], note: null };
  }
  if (ordered.length > maxFaces) {
    return { faces: ordered.slice(0, maxFaces), note: `found ${ordered.length} faces; parsed the ${maxFaces} with `
      + `the highest scores (the cap is ${maxFaces} a picture)` };
  }
  return { faces: ordered, note: null };
}

/**
 * The square crop [x0, y0, x1, y1] (integers, image px, side ≥ 1) a face is parsed on (geometry.crop_box):
 * side = cropScale × max(w, h) but at most the image's longer side, centred on the box moved by cropShift × h.
 * It may reach outside the image (that part is parsed as black).
 */
export function cropBox(box, width, height, spec) {
  const [x0, y0, x1, y1] = box;
  const w = Math.max(x1 - x0, 0), h = Math.max(y1 - y0, 0);
  const side = Math.max(1, Math.min(roundHalfUp(spec.cropScale * Math.max(w, h)), Math.max(width, height)));
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2 + spec.cropShift * h;
  const left = roundHalfUp(cx - side / 2), top = roundHalfUp(cy - side / 2);
  return [left, top, left + side, top + side];
}

/** The crop's RGBA pixels; parts outside the image are black (0, 0, 0, 0), as PIL's crop. */
export function cropRgba(rgba, width, height, box) {
  const [x0, y0, x1, y1] = box;
  const w = x1 - x0, h = y1 - y0;
  const out = new Uint8Array(w * h * 4);
  const sx0 = Math.max(0, x0), sx1 = Math.min(width, x1);
  if (sx1 <= sx0) return out;
  for (let y = Math.max(0, y0); y < Math.min(height, y1); y++) {
    const src = (y * width + sx0) * 4;
    out.set(rgba.subarray(src, src + (sx1 - sx0) * 4), ((y - y0) * w + (sx0 - x0)) * 4);
  }
  return out;
}

/**
 * Live frames (static/js/worker.js; no Python twin: the server parses photos): a face's crop stays where it was last frame unless the face moved or grew by more than `hold`
 * of the crop's side (centre in x or y, or the side). The detector's box jitters by a few pixels on a still
 * face; re-cropping by that much would shift every label under the crop (flicker), while a bigger move is
 * followed in the very frame it is seen (no lag, unlike averaging boxes over frames). Each new crop is matched
 * to the last frame's crop it overlaps most.
 */
export function steadyCrops(crops, last, hold) {
  if (!hold || !last?.length) return crops;
  return crops.map((crop) => {
    let best = null, bestIou = 0;
    for (const old of last) {
      const v = iou(crop, old);
      if (v > bestIou) { best = old; bestIou = v; }
    }
    if (!best) return crop;
    const side = best[2] - best[0], limit = hold * side;
    const moved = Math.max(Math.abs(crop[0] + crop[2] - best[0] - best[2]) / 2,
      Math.abs(crop[1] + crop[3] - best[1] - best[3]) / 2, Math.abs(crop[2] - crop[0] - side));
    return moved <= limit ? best : crop;
  });
}

/**
 * Write face `number`'s crop labels (side × side) into the full-size `labels` and `owner` maps (in place),
 * clipped to the image (geometry.paste): a pixel already claimed (non-background) by an earlier face is kept;
 * background pixels take this face's label, and the owner map its number where that label is not background.
 * Returns how many pixels this face claimed. Call in face order.
 */
export function paste(labels, owner, width, height, cropLabels, crop, number) {
  const [x0, y0, x1, y1] = crop;
  const side = x1 - x0;
  if (cropLabels.length !== side * (y1 - y0)) throw new Error('crop labels do not match the crop');
  let claimed = 0;
  for (let y = Math.max(0, y0); y < Math.min(height, y1); y++) {
    const row = y * width, crow = (y - y0) * side - x0;
    for (let x = Math.max(0, x0); x < Math.min(width, x1); x++) {
      const i = row + x, v = cropLabels[crow + x];
      if (labels[i] !== 0 || v === 0) continue;
      labels[i] = v;
      owner[i] = number;
      claimed++;
    }
  }
  return claimed;
}

/**
 * An owner map from the final label map and the faces' crops alone (the server sends none): a labelled pixel
 * belongs to the first face whose crop holds it; background belongs to none. Exact except where crops overlap
 * and an earlier crop left as background a pixel that a later face labelled.
 */
export function ownerFromCrops(labels, width, height, crops) {
  const owner = new Uint8Array(width * height);
  crops.forEach(([x0, y0, x1, y1], k) => {
    for (let y = Math.max(0, y0); y < Math.min(height, y1); y++) {
      for (let x = Math.max(0, x0); x < Math.min(width, x1); x++) {
        const i = y * width + x;
        if (!owner[i] && labels[i] !== 0) owner[i] = k + 1;
      }
    }
  });
  return owner;
}

/** Percent of each class among the pixels face `k` owns, length `numClasses`. */
export function faceAreaPercent(labels, owner, k, numClasses) {
  const counts = new Float64Array(numClasses);
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (owner[i] === k) { counts[labels[i]]++; n++; }
  return Array.from(counts, (c) => (100 * c) / Math.max(n, 1));
}

/** The label map of face `k` only (0 elsewhere); k = 0 returns `labels` itself. */
export function faceLabels(labels, owner, k) {
  if (!k) return labels;
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) if (owner[i] === k) out[i] = labels[i];
  return out;
}

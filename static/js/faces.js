// Faces anywhere, browser side: the JS twin of face_studio/faces/anchors.py + geometry.py.
// tests/browser/test_faces_twin.py holds the two to the same numbers on the same detector outputs and images.
//
// Every constant (detector file and input size, anchor layout, thresholds, the cap, crop framing) comes from
// static/faces.json, which the set-up writes from face_studio/faces/spec.py: nothing is copied here.
//
// Pipeline (static/js/worker.js runs it): letterbox → detector → decode → NMS → image pixels → order/cap →
// per face: cropBox → cropRgba → (parse like a photo) → paste into the full-size label map + owner map.
import { resizeBilinearPIL } from './segment.js';

/** Fetch and check static/faces.json; rejects with a line naming the set-up step. */
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
  return response.json();
}

/** Anchor centres (x, y, normalised) for the detector in `spec`, in the model's output order. */
export function anchors(detector) {
  const { input_size: size, strides, anchors_per_cell: perCell, anchor_offset: offset } = detector.anchors;
  const out = [];
  for (let layer = 0; layer < strides.length; layer++) {
    const grid = Math.ceil(size / strides[layer]);
    for (let y = 0; y < grid; y++) {
      for (let x = 0; x < grid; x++) {
        for (let a = 0; a < perCell[layer]; a++) out.push([(x + offset) / grid, (y + offset) / grid]);
      }
    }
  }
  return out;
}

/**
 * The detector's input: the whole image letterboxed into size×size (aspect kept, Pillow BILINEAR resize,
 * black padding), RGB scaled to [-1, 1], planar NCHW. Returns {pixels, scale, padX, padY, w, h}: the
 * resized image is w×h at (padX, padY) in the square; `scale` = w / width.
 */
export function letterbox(rgba, width, height, size) {
  const scale = Math.min(size / width, size / height);
  const w = Math.max(1, Math.min(size, Math.round(width * scale)));
  const h = Math.max(1, Math.min(size, Math.round(height * scale)));
  const padX = Math.floor((size - w) / 2), padY = Math.floor((size - h) / 2);
  const rgb = resizeBilinearPIL(rgba, width, height, w, h, 4);
  const plane = size * size;
  const pixels = new Float32Array(3 * plane).fill(-1); // black padding
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 3, o = (y + padY) * size + x + padX;
      for (let c = 0; c < 3; c++) pixels[c * plane + o] = rgb[s + c] / 127.5 - 1;
    }
  }
  return { pixels, scale: w / width, scaleY: h / height, padX, padY, w, h, size };
}

const sigmoid = (v) => 1 / (1 + Math.exp(-v));

/**
 * Raw outputs → detections above the score threshold, in normalised letterbox coordinates:
 * [{box: [x0, y0, x1, y1], score, keypoints: [[x, y] × 6]}], in anchor order.
 */
export function decode(regressors, classificators, detector, anchorList = anchors(detector)) {
  const size = detector.input_size;
  const clip = detector.score_clip;
  const stride = regressors.length / anchorList.length;
  const out = [];
  for (let i = 0; i < anchorList.length; i++) {
    let logit = classificators[i];
    if (clip) logit = Math.min(Math.max(logit, -clip), clip);
    const score = sigmoid(logit);
    if (!(score >= detector.score_threshold)) continue;
    const r = i * stride, [ax, ay] = anchorList[i];
    const cx = regressors[r] / size + ax, cy = regressors[r + 1] / size + ay;
    const w = regressors[r + 2] / size, h = regressors[r + 3] / size;
    const keypoints = [];
    for (let k = 0; k < detector.keypoints; k++) {
      keypoints.push([regressors[r + 4 + 2 * k] / size + ax, regressors[r + 5 + 2 * k] / size + ay]);
    }
    out.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score, keypoints });
  }
  return out;
}

/** Intersection over union of two [x0, y0, x1, y1] boxes (0 when either is empty). */
export function iou(a, b) {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Non-maximum suppression, MediaPipe's way: take the best remaining detection and every other one that
 * overlaps it by more than `threshold` IoU; `weighted` averages their boxes and keypoints by score (the best's
 * score is kept), otherwise the best one stands alone. Stable on ties (earlier anchor first).
 */
export function nms(detections, threshold, weighted) {
  let rest = detections.map((d, i) => ({ d, i })).sort((a, b) => b.d.score - a.d.score || a.i - b.i).map((e) => e.d);
  const kept = [];
  while (rest.length) {
    const best = rest[0];
    const group = [], others = [];
    for (const d of rest) (iou(best.box, d.box) > threshold || d === best ? group : others).push(d);
    rest = others;
    if (!weighted || group.length === 1) { kept.push(best); continue; }
    let total = 0;
    const box = [0, 0, 0, 0], keypoints = best.keypoints.map(() => [0, 0]);
    for (const d of group) {
      total += d.score;
      for (let j = 0; j < 4; j++) box[j] += d.box[j] * d.score;
      d.keypoints.forEach(([x, y], k) => { keypoints[k][0] += x * d.score; keypoints[k][1] += y * d.score; });
    }
    kept.push({
      box: box.map((v) => v / total), score: best.score,
      keypoints: keypoints.map(([x, y]) => [x / total, y / total]),
    });
  }
  return kept;
}

/** A detection in normalised letterbox coordinates → original-image pixels (floats, not clipped). */
export function toImage(detection, lb) {
  const px = (x) => (x * lb.size - lb.padX) / lb.scale;
  const py = (y) => (y * lb.size - lb.padY) / lb.scaleY;
  const [x0, y0, x1, y1] = detection.box;
  return {
    box: [px(x0), py(y0), px(x1), py(y1)], score: detection.score,
    keypoints: detection.keypoints.map(([x, y]) => [px(x), py(y)]),
  };
}

/** Faces by score descending (ties: x0, then y0): face k is numbered k + 1 everywhere. */
export function orderFaces(faces) {
  return [...faces].sort((a, b) => b.score - a.score || a.box[0] - b.box[0] || a.box[1] - b.box[1]);
}

const boxArea = ([x0, y0, x1, y1]) => Math.max(0, x1 - x0) * Math.max(0, y1 - y0);

/**
 * Apply the mode and the cap to ordered faces: 'off' → none, 'largest' → the largest box (ties: first in
 * order), 'auto' → all, at most `maxFaces` (the highest-scoring). Returns {faces, note} (note: null or a line).
 */
export function selectFaces(ordered, mode, maxFaces) {
  if (mode === 'off') return { faces: [], note: null };
  if (!ordered.length) return { faces: [], note: 'no face found: parsed the whole image' };
  if (mode === 'largest') {
    let best = ordered[0];
    for (const f of ordered) if (boxArea(f.box) > boxArea(best.box)) best = f;
    return { faces: [best], note: null };
  }
  if (ordered.length > maxFaces) {
    return { faces: ordered.slice(0, maxFaces),
      note: `${ordered.length} faces found: parsed the ${maxFaces} with the highest scores (the cap)` };
  }
  return { faces: ordered, note: null };
}

/**
 * The square crop around a face, framed like the parser's training data (face, hair, ears, neck): integer
 * [x0, y0, x1, y1] in image pixels, side = x1 - x0 = y1 - y0; it may reach outside the image.
 */
export function cropBox(face, crop) {
  const [x0, y0, x1, y1] = face.box;
  const w = x1 - x0, h = y1 - y0;
  const side = Math.max(1, Math.round(Math.max(w, h) * crop.scale));
  const cx = (x0 + x1) / 2 + crop.shift_x * w;
  const cy = (y0 + y1) / 2 + crop.shift_y * h;
  const left = Math.round(cx - side / 2), top = Math.round(cy - side / 2);
  return [left, top, left + side, top + side];
}

/** The crop's RGBA pixels (side × side); parts outside the image are black (0, 0, 0, 0), as PIL's crop. */
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
 * Paste face `k`'s crop labels (crop size, row-major) into the full-size `labels` and `owner` maps (in place),
 * clipped to the image. A pixel already claimed (non-background) by an earlier face keeps its label and owner;
 * background pixels take this crop's label and owner k. Call in face order.
 */
export function paste(labels, owner, width, height, cropLabels, box, k) {
  const [x0, y0, x1] = box;
  const w = x1 - x0;
  const ys = Math.max(0, y0), ye = Math.min(height, box[3]);
  const xs = Math.max(0, x0), xe = Math.min(width, x1);
  for (let y = ys; y < ye; y++) {
    const row = y * width, crow = (y - y0) * w - x0;
    for (let x = xs; x < xe; x++) {
      const i = row + x;
      if (labels[i] !== 0) continue;
      labels[i] = cropLabels[crow + x];
      owner[i] = k;
    }
  }
}

/** Percent of each class among the pixels face `k` owns (owner map), length `numClasses`. */
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

/**
 * An owner map from the final label map and the faces' crops alone (the server sends no owner map), by the
 * paste rule: a labelled pixel belongs to the first face whose crop holds it, a background pixel to the last.
 * Exact except where crops overlap and a later face's label won a pixel an earlier crop left as background.
 */
export function ownerFromCrops(labels, width, height, crops) {
  const owner = new Uint8Array(width * height);
  crops.forEach(([x0, y0, x1, y1], k) => {
    for (let y = Math.max(0, y0); y < Math.min(height, y1); y++) {
      for (let x = Math.max(0, x0); x < Math.min(width, x1); x++) {
        const i = y * width + x;
        if (!owner[i] || labels[i] === 0) owner[i] = k + 1;
      }
    }
  });
  return owner;
}

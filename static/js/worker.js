// Web Worker that owns the face parser (transformers.js + ONNX Runtime Web), so the page never blocks.
//
// Messages, both ways: {type, data}.
//   page → worker  load   {modelRoot, modelId, vendorUrl, device: 'webgpu'|'wasm', dtype, numThreads, inputSize,
//                          labelsGraph: run onnx/labels*.onnx (export --labels-out: upsample + argmax in the graph),
//                          hysteresis: margin a pixel's new label must win by, in units of the frame's mean top-1 −
//                          top-2 logit gap (labels graph only; 0: argmax), still: the most a pixel's colour may
//                          change between frames (grey levels, any channel) for its last label to be held,
//                          facesUrl?}  (facesUrl: static/faces.json; without it no face detector is loaded)
//                  parse  {id, rgba: ArrayBuffer, width, height, faces?: 'auto'|'largest'|'off' (default 'off'),
//                          track?: {maxAgeMs, motion, tiles, maxFaces, hold}  (live frames: `trackFaces`),
//                          labelsMax?: live frames: the model's labels at most this many px a side (see
//                          `labelsGrid`), scaled to the frame by nearest neighbour; 0 or absent: full size}
//                  detect {id, rgba: ArrayBuffer, width, height}  (faces only, for callers that crop themselves)
//   worker → page  progress {...transformers.js progress event}   status {phase}
//                  ready {modelId, inputSize, device, dtype, numThreads, isolated, loadMs, warmupMs,
//                         detector: {file, inputSize, loadMs} | {error}}
//                  result {id, modelId, labels: ArrayBuffer, width, height, timings, boundaryPixels,
//                          faces: [{box, score, keypoints, crop}], found (faces seen before mode/cap),
//                          owner: ArrayBuffer|null, note: string|null}
//                  detections {id, faces, timings}
//                  error {id?, stage, message}
// One worker per model: the Parse view's main parser and live mode's parser (static/js/live.js) each own one.
//
// The face detector runs in the SAME ONNX Runtime as the parser: transformers.min.js bundles onnxruntime-web
// but does not export it, so the detector's session is made with the InferenceSession class of the parser's
// own session (`model.sessions`), on the wasm execution provider (a 0.2–1 MB model: WebGPU would not pay).
// One runtime, one wasm instance, no second copy of ORT to vendor or to keep in step.
import { AutoModel, Tensor, env } from '../vendor/transformers.min.js';
import {
  anchors, cropBox, cropRgba, detectFaces, detectorOf, loadFacesSpec, paste, selectFaces, steadyCrops,
} from './faces.js';
import { INPUT_SIZE, logitsToLabels, toPixelValues } from './segment.js';

let parser = null; // the lazy singleton: {model, device, dtype}
let detector = null; // {session, spec, anchors} once loaded, or {error} when it could not be

function post(type, data, transfer = []) {
  self.postMessage({ type, data }, transfer);
}

function configure({ modelRoot, vendorUrl, device, numThreads }) {
  // Everything from our own origin: no hub, no CDN.
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = modelRoot;
  const wasm = env.backends.onnx.wasm;
  // WebGPU needs the asyncify build; plain WASM loads the smaller, faster-starting pair.
  const build = device === 'webgpu' ? 'ort-wasm-simd-threaded.asyncify' : 'ort-wasm-simd-threaded';
  wasm.wasmPaths = { mjs: `${vendorUrl}${build}.mjs`, wasm: `${vendorUrl}${build}.wasm` };
  // The default stays 1 even when cross-origin isolated: ask for every core ourselves.
  wasm.numThreads = self.crossOriginIsolated ? numThreads : 1;
  return wasm.numThreads;
}

async function load(options) {
  if (parser) throw new Error('the parser is already loaded in this worker');
  const numThreads = configure(options);
  const t0 = performance.now();
  post('status', { phase: 'loading' });
  const model = await AutoModel.from_pretrained(options.modelId, {
    device: options.device,
    dtype: options.dtype,
    ...(options.labelsGraph ? { model_file_name: 'labels' } : {}),
    progress_callback: (event) => post('progress', event),
  });
  const t1 = performance.now();
  // Warm-up on a dummy frame before saying "ready" (first runs compile kernels / allocate).
  post('status', { phase: 'warming up' });
  const size = options.inputSize || INPUT_SIZE; // the export's preprocessor_config size
  const dummy = new Tensor('float32', new Float32Array(3 * size * size), [1, 3, size, size]);
  await model({ pixel_values: dummy, ...(options.labelsGraph ? labelsFeeds(null, size, size, 0) : {}) });
  const t2 = performance.now();
  parser = { model, device: options.device, dtype: options.dtype, size, modelId: options.modelId,
    labelsGraph: Boolean(options.labelsGraph), hysteresis: options.hysteresis || 0, still: options.still ?? 16,
    previous: null };
  if (options.facesUrl) {
    post('status', { phase: 'loading the face detector' });
    detector = await loadDetector(model, options.facesUrl, options.vendorUrl);
  }
  post('ready', {
    modelId: options.modelId, inputSize: size, device: options.device, dtype: options.dtype, numThreads,
    isolated: self.crossOriginIsolated, loadMs: t1 - t0, warmupMs: t2 - t1,
    detector: detector && (detector.error ? { error: detector.error }
      : { file: detectorOf(detector.spec).onnx, inputSize: detectorOf(detector.spec).input_size, loadMs: detector.loadMs }),
  });
}

/** The labels graph's extra inputs; `previous` (last frame's labels at this size) or null: plain argmax. */
function labelsFeeds(previous, height, width, hysteresis) {
  return {
    output_size: new Tensor('int64', BigInt64Array.from([height, width].map(BigInt)), [2]),
    previous_labels: new Tensor('uint8', previous || new Uint8Array(height * width), [1, height, width]),
    hysteresis: new Tensor('float32', Float32Array.of(previous ? hysteresis : 0), [1]),
  };
}

/** The face detector in the parser's ONNX Runtime; {error} (a line naming the set-up step) if it can't load. */
async function loadDetector(model, facesUrl, vendorUrl) {
  const t0 = performance.now();
  try {
    const spec = await loadFacesSpec(facesUrl);
    const file = detectorOf(spec).onnx;
    const url = new URL(`${spec.detectorFolder}/${file}`, new URL('../', new URL(vendorUrl, self.location.href))).href;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`the face detector ${file} is missing (HTTP ${response.status})`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const InferenceSession = Object.values(model.sessions || {})[0]?.constructor;
    if (typeof InferenceSession?.create !== 'function') {
      throw new Error('this transformers.js build does not expose its ONNX Runtime session class');
    }
    let session;
    try {
      session = await InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    } catch (err) {
      throw new Error(`the face detector ${file} is damaged (${err?.message || err})`);
    }
    return { session, spec, anchors: anchors(detectorOf(spec)), loadMs: performance.now() - t0 };
  } catch (err) {
    const message = err?.message || String(err);
    return { error: `${message}${/setup\.sh/.test(message) ? '' : ': run scripts/setup.sh (it converts the face detector)'}` };
  }
}

/**
 * Faces in the image, ordered (face k+1 = faces[k]), with their crops: {faces, note, timings}. `tiles` false:
 * the whole-image letterbox only (one detector run: live frames, where a face is large); `maxFaces` caps.
 */
async function findFaces(rgba, width, height, mode, { tiles = true, maxFaces } = {}) {
  const { session, anchors: anchorList } = detector;
  const spec = tiles ? detector.spec : { ...detector.spec, smallFaces: 'whole' };
  const d = detectorOf(spec);
  let modelMs = 0;
  const run = async (pixels) => {
    const t = performance.now();
    const input = new Tensor('float32', pixels, [1, 3, d.input_size, d.input_size]).ort_tensor;
    const out = await session.run({ [d.input_name]: input });
    modelMs += performance.now() - t;
    return { regressors: out[d.regressors].data, classificators: out[d.classificators].data };
  };
  const t0 = performance.now();
  const found = await detectFaces(rgba, width, height, spec, run, anchorList);
  const { faces, note } = selectFaces(found.faces, mode, maxFaces ?? spec.maxFaces);
  for (const face of faces) face.crop = cropBox(face.box, width, height, spec);
  // One stage for the page's table; the detector model's own share (all its runs) in `detector model`.
  return { faces, note, found: found.faces.length,
    timings: { detect: performance.now() - t0, 'detector model': modelMs } };
}

/**
 * One parse of RGBA pixels at the parser's size, labels at `outH` × `outW` (default: width × height).
 * `previous`: the last frame's labels under these pixels at that size, for the labels graph's hysteresis;
 * null: plain argmax.
 */
async function parsePixels(rgba, width, height, previous = null, outH = height, outW = width) {
  const { size } = parser;
  const t0 = performance.now();
  const pixels = toPixelValues(rgba, width, height, size);
  const t1 = performance.now();
  const input = new Tensor('float32', pixels, [1, 3, size, size]);
  let labels, exact = null, t2;
  if (parser.labelsGraph) { // the graph upsampled and took the argmax (in "model"); the worker only copies
    const out = await parser.model({ pixel_values: input, ...labelsFeeds(previous, outH, outW, parser.hysteresis) });
    t2 = performance.now();
    labels = new Uint8Array(out.labels.data);
  } else {
    const { logits } = await parser.model({ pixel_values: input });
    t2 = performance.now();
    const [, channels, h, w] = logits.dims;
    ({ labels, exact } = logitsToLabels(logits.data, channels, h, w, outH, outW));
  }
  const t3 = performance.now();
  return { labels, exact, timings: { preprocess: t1 - t0, model: t2 - t1, postprocess: t3 - t2 } };
}

/**
 * Live frames: the size the model's labels are made at for a `width` × `height` picture (a face crop or the
 * whole frame) — the picture's own size, or when `labelsMax` is set and the picture is larger, the same shape
 * with its longer side `labelsMax` (live mode: the parser's input size). The graph's upsample + argmax then
 * works on at most `labelsMax`² pixels instead of a 480-px crop or the 640×480 frame (its cost in WASM grows
 * with the output: bench/live.py), and the worker scales the labels to the picture by nearest neighbour
 * (`scaleIndex`); the logits are 1/4 of the input, so at `labelsMax` = input size the map still has 4× the
 * logits' resolution. {outH, outW}.
 */
function labelsGrid(width, height, labelsMax) {
  const scale = labelsMax ? Math.min(1, labelsMax / Math.max(width, height)) : 1;
  return { outH: Math.max(1, Math.round(height * scale)), outW: Math.max(1, Math.round(width * scale)) };
}

/** Nearest-neighbour map between `n` picture pixels and `m` label pixels (centres): picture i → label
 *  floor((i + 0.5) m / n), and label j → picture floor((j + 0.5) n / m) (`m` ≤ `n`: each label's centre pixel
 *  maps back to that label, so hysteresis and paste agree). */
function scaleIndex(n, m) {
  const toLabel = new Int32Array(n), toPicture = new Int32Array(m);
  for (let i = 0; i < n; i++) toLabel[i] = Math.min(m - 1, Math.floor(((i + 0.5) * m) / n));
  for (let j = 0; j < m; j++) toPicture[j] = Math.min(n - 1, Math.floor(((j + 0.5) * n) / m));
  return { toLabel, toPicture };
}

/** `labels` (outH × outW) scaled by nearest neighbour to width × height. */
function scaleLabels(labels, outH, outW, width, height) {
  if (outH === height && outW === width) return labels;
  const xs = scaleIndex(width, outW).toLabel, ys = scaleIndex(height, outH).toLabel;
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const src = ys[y] * outW, row = y * width;
    for (let x = 0; x < width; x++) out[row + x] = labels[src + xs[x]];
  }
  return out;
}

const NO_PREVIOUS = 255; // export/labels_graph.py: a previous label that holds nothing

/**
 * Hysteresis keeps the last frame (labels and pixels) in FRAME coordinates, so it follows any crop: the previous
 * labels for `rgba` (the frame, or a crop of it at `box`) are last frame's labels under it, except where the
 * pixel's colour changed by more than `parser.still` in any channel (motion, a cut: NO_PREVIOUS, the plain
 * argmax there), so an old label never lingers where the picture moved. Outside the frame: background. Made at
 * the labels' size `outH` × `outW` (each label pixel reads its centre picture pixel, `scaleIndex`). Null when
 * the parser has no hysteresis or there is no last frame of this size.
 */
function previousUnder(rgba, width, height, box = null, outH = null, outW = null) {
  const last = parser.previous;
  if (!parser.labelsGraph || !parser.hysteresis || !last || last.width !== width || last.height !== height) {
    return null;
  }
  const [x0, y0, x1, y1] = box || [0, 0, width, height], side = x1 - x0, tall = y1 - y0;
  const oh = outH ?? tall, ow = outW ?? side;
  const xs = scaleIndex(side, ow).toPicture, ys = scaleIndex(tall, oh).toPicture;
  const out = new Uint8Array(oh * ow);
  const still = parser.still;
  for (let j = 0; j < oh; j++) {
    const cy = ys[j], y = cy + y0;
    if (y < 0 || y >= height) continue;
    for (let i = 0; i < ow; i++) {
      const cx = xs[i], x = cx + x0;
      if (x < 0 || x >= width) continue;
      const f = y * width + x, p = 4 * f, q = 4 * (cy * side + cx);
      const moved = Math.abs(rgba[q] - last.rgba[p]) > still || Math.abs(rgba[q + 1] - last.rgba[p + 1]) > still
        || Math.abs(rgba[q + 2] - last.rgba[p + 2]) > still;
      out[j * ow + i] = moved ? NO_PREVIOUS : last.labels[f];
    }
  }
  return out;
}

/** Keep this frame's labels and pixels (the worker owns `rgba`) for the next frame's hysteresis. */
function keepForHysteresis(labels, rgba, width, height) {
  if (parser.labelsGraph && parser.hysteresis) parser.previous = { labels: labels.slice(), rgba, width, height };
}

const addTimings = (into, more) => { for (const [k, v] of Object.entries(more)) into[k] = (into[k] || 0) + v; };

/**
 * Live frames (`track` = {maxAgeMs, motion, tiles, maxFaces, hold}): the detector runs again when the picture
 * changed since its last run — more than `motion` of the frame's pixels (a grid sample, `movedShare`) differ
 * by more than `parser.still` grey levels from the frame it ran on — or once that run is `maxAgeMs` old; the
 * frames between reuse its faces and crops (a crop is 2.4 × the face, so a face moving less than that stays
 * inside it, and the parse of the current frame still follows it). A still face costs one detector run a
 * `maxAgeMs`; a moving one is found again on the frame it moved (`motion` 0: the age alone decides). A bound
 * in time, not in frames: a slow machine never keeps a crop from seconds ago. Crops are held through the
 * detector's jitter (steadyCrops).
 */
async function trackFaces(pixels, width, height, mode, { maxAgeMs = 0, motion = 0, tiles = false, maxFaces,
  hold = 0 }) {
  const last = parser.tracked;
  if (last && last.width === width && last.height === height && performance.now() - last.at < maxAgeMs
      && !(motion && movedShare(pixels, last.pixels, width, height, parser.still) > motion)) {
    return { ...structuredClone(last.seen), timings: {} };
  }
  const at = performance.now();
  const seen = await findFaces(pixels, width, height, mode, { tiles, maxFaces });
  const crops = steadyCrops(seen.faces.map((f) => f.crop), last?.width === width ? last.crops : null, hold);
  seen.faces.forEach((face, k) => { face.crop = crops[k]; });
  parser.tracked = { seen: structuredClone({ faces: seen.faces, note: seen.note, found: seen.found }), crops, at,
    width, height, pixels };
  return seen;
}

const MOTION_GRID = 64; // samples across the frame's longer side for `movedShare` (64 × 48 on 640 × 480)

/** The share (0…1) of a grid of pixels whose colour differs between two RGBA frames by more than `still`
 *  grey levels in any channel: how much of the picture moved. */
function movedShare(a, b, width, height, still) {
  const step = Math.max(1, Math.floor(Math.max(width, height) / MOTION_GRID));
  let moved = 0, n = 0;
  for (let y = step >> 1; y < height; y += step) {
    for (let x = step >> 1; x < width; x += step, n++) {
      const p = 4 * (y * width + x);
      if (Math.abs(a[p] - b[p]) > still || Math.abs(a[p + 1] - b[p + 1]) > still
          || Math.abs(a[p + 2] - b[p + 2]) > still) moved++;
    }
  }
  return n ? moved / n : 0;
}

async function parse({ id, rgba, width, height, faces: mode = 'off', track = null, labelsMax = 0 }) {
  if (!parser) throw new Error('the parser is not loaded yet');
  const pixels = new Uint8Array(rgba);
  const timings = {};
  let faces = [], note = null, found = 0; // found: faces the detector saw (before the mode and the cap)
  if (mode !== 'off') {
    if (detector?.error) note = `${detector.error[0].toUpperCase()}${detector.error.slice(1)} — parsed the whole image.`;
    else if (!detector) note = 'No face detector was loaded — parsed the whole image.';
    else {
      const seen = track ? await trackFaces(pixels, width, height, mode, track)
        : await findFaces(pixels, width, height, mode);
      ({ faces, note, found } = seen);
      addTimings(timings, seen.timings);
      if (!faces.length) note = 'No face found: parsed the whole image.';
    }
  }
  if (!faces.length) { // 'off', or no face: the whole image, as before faces
    const { outH, outW } = labelsGrid(width, height, labelsMax);
    const whole = await parsePixels(pixels, width, height, previousUnder(pixels, width, height, null, outH, outW),
      outH, outW);
    addTimings(timings, whole.timings);
    let t = performance.now();
    const labels = scaleLabels(whole.labels, outH, outW, width, height);
    addTimings(timings, { paste: performance.now() - t });
    keepForHysteresis(labels, pixels, width, height); // before its buffer is transferred
    post('result', {
      id, modelId: parser.modelId, labels: labels.buffer, width, height, boundaryPixels: whole.exact,
      timings, faces: [], found, owner: null, note,
    }, [labels.buffer]);
    return;
  }
  // Crop → parse → paste, face by face in face order (earlier faces keep the pixels they claimed).
  const labels = new Uint8Array(width * height), owner = new Uint8Array(width * height);
  let exact = 0;
  for (let k = 0; k < faces.length; k++) {
    const box = faces[k].crop, side = box[2] - box[0];
    let t = performance.now();
    const crop = cropRgba(pixels, width, height, box);
    addTimings(timings, { crop: performance.now() - t });
    const { outH, outW } = labelsGrid(side, side, labelsMax);
    const one = await parsePixels(crop, side, side, previousUnder(crop, width, height, box, outH, outW), outH, outW);
    addTimings(timings, one.timings);
    exact += one.exact;
    t = performance.now();
    paste(labels, owner, width, height, scaleLabels(one.labels, outH, outW, side, side), box, k + 1);
    addTimings(timings, { paste: performance.now() - t });
  }
  keepForHysteresis(labels, pixels, width, height);
  post('result', {
    id, modelId: parser.modelId, labels: labels.buffer, width, height, boundaryPixels: exact, timings,
    faces, found, owner: owner.buffer, note,
  }, [labels.buffer, owner.buffer]);
}

async function detect({ id, rgba, width, height }) {
  if (!detector || detector.error) throw new Error(detector?.error || 'no face detector was loaded');
  const { faces, note, timings } = await findFaces(new Uint8Array(rgba), width, height, 'auto');
  post('detections', { id, faces, note, timings });
}

self.onmessage = async ({ data: message }) => {
  const { type, data } = message;
  try {
    switch (type) {
      case 'load':
        await load(data);
        break;
      case 'parse':
        await parse(data);
        break;
      case 'detect':
        await detect(data);
        break;
      default:
        throw new Error(`unknown message type ${JSON.stringify(type)}`);
    }
  } catch (err) {
    post('error', { id: data?.id, stage: type, message: err?.message || String(err) });
  }
};

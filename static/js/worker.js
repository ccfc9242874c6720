// Web Worker that owns the face parser (transformers.js + ONNX Runtime Web), so the page never blocks.
//
// Messages, both ways: {type, data}.
//   page → worker  load  {modelRoot, modelId, vendorUrl, device: 'webgpu'|'wasm', dtype, numThreads, inputSize,
//                         labelsGraph: run onnx/labels*.onnx (export --labels-out: upsample + argmax in the graph),
//                         hysteresis: logit margin a pixel's new label must win by (labels graph only; 0: argmax)}
//                  parse {id, rgba: ArrayBuffer, width, height}
//   worker → page  progress {...transformers.js progress event}   status {phase}
//                  ready {modelId, inputSize, device, dtype, numThreads, isolated, loadMs, warmupMs}
//                  result {id, modelId, labels: ArrayBuffer, width, height, timings, boundaryPixels}
//                  error {id?, stage, message}
// One worker per model: the Parse view's main parser and live mode's parser (static/js/live.js) each own one.
import { AutoModel, Tensor, env } from '../vendor/transformers.min.js';
import { INPUT_SIZE, logitsToLabels, toPixelValues } from './segment.js';

let parser = null; // the lazy singleton: {model, device, dtype}

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
    labelsGraph: Boolean(options.labelsGraph), hysteresis: options.hysteresis || 0, previous: null };
  post('ready', {
    modelId: options.modelId, inputSize: size, device: options.device, dtype: options.dtype, numThreads,
    isolated: self.crossOriginIsolated, loadMs: t1 - t0, warmupMs: t2 - t1,
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

async function parse({ id, rgba, width, height }) {
  if (!parser) throw new Error('the parser is not loaded yet');
  const t0 = performance.now();
  const { size } = parser;
  const pixels = toPixelValues(new Uint8Array(rgba), width, height, size);
  const t1 = performance.now();
  const input = new Tensor('float32', pixels, [1, 3, size, size]);
  let labels, exact = null, t2;
  if (parser.labelsGraph) { // the graph upsampled and took the argmax (in "model"); the worker only copies
    const last = parser.previous;
    const previous = last && last.width === width && last.height === height ? last.labels : null;
    const out = await parser.model({ pixel_values: input, ...labelsFeeds(previous, height, width, parser.hysteresis) });
    t2 = performance.now();
    labels = new Uint8Array(out.labels.data);
    if (parser.hysteresis) parser.previous = { labels: labels.slice(), width, height }; // labels' buffer leaves
  } else {
    const { logits } = await parser.model({ pixel_values: input });
    t2 = performance.now();
    const [, channels, h, w] = logits.dims;
    ({ labels, exact } = logitsToLabels(logits.data, channels, h, w, height, width));
  }
  const t3 = performance.now();
  post('result', {
    id, modelId: parser.modelId, labels: labels.buffer, width, height, boundaryPixels: exact,
    timings: { preprocess: t1 - t0, model: t2 - t1, postprocess: t3 - t2 },
  }, [labels.buffer]);
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
      default:
        throw new Error(`unknown message type ${JSON.stringify(type)}`);
    }
  } catch (err) {
    post('error', { id: data?.id, stage: type, message: err?.message || String(err) });
  }
};

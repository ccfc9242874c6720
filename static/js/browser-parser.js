// Page side of the worker: pick a backend (WebGPU fp16 → WebGPU fp32 → WASM), load it in a fresh worker,
// and turn {type, data} messages into promises. A failure at any step rejects with a readable reason.

/** Backends to try for `preference` ('auto' | 'webgpu' | 'wasm'), best first. */
export async function backendPlan(preference, wasmDtype, dtypes) {
  const plan = [];
  if (preference === 'auto' || preference === 'webgpu') {
    const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    // A software adapter (SwiftShader) is far slower than WASM: 'auto' only takes a real GPU.
    const software = adapter && (adapter.isFallbackAdapter || adapter.info?.isFallbackAdapter);
    if (adapter && (preference === 'webgpu' || !software)) {
      const f16 = adapter.features.has('shader-f16') && dtypes.includes('fp16');
      plan.push({ device: 'webgpu', dtype: f16 ? 'fp16' : 'fp32' });
    } else if (preference === 'webgpu') {
      plan.push({ device: 'webgpu', dtype: 'fp32', unavailable: 'this browser has no WebGPU adapter' });
    }
  }
  if (preference !== 'webgpu') plan.push({ device: 'wasm', dtype: wasmDtype });
  return plan;
}

export const DEVICE_NAMES = { webgpu: 'WebGPU', wasm: 'WASM' };

/** Where static/faces.json is: the page config's `facesUrl`, else next to the vendor folder. */
export function facesUrl(config) {
  if (config.facesUrl !== undefined) return config.facesUrl; // null: no detector wanted
  return new URL('../faces.json', new URL(config.vendorUrl, globalThis.location?.href)).href;
}

/**
 * Load the first backend of `backendPlan(choice, wasmDtype, config.dtypes)` that works.
 * `onStep(name)` is called before each try; `callbacks(name)` gives the BrowserParser's {onProgress, onStatus};
 * `numThreads` (WASM) defaults to every core.
 * Resolves to {parser, loadMs, failures}; rejects with every failure's reason when none loads.
 */
export async function loadFirstBackend(config, choice, wasmDtype,
  { onStep = () => {}, callbacks = () => ({}), numThreads, hysteresis, still } = {}) {
  const failures = [];
  for (const step of await backendPlan(choice, wasmDtype, config.dtypes)) {
    const name = `${DEVICE_NAMES[step.device]} ${step.dtype}`;
    if (step.unavailable) { failures.push(`${name}: ${step.unavailable}`); continue; }
    onStep(name);
    const parser = new BrowserParser(config, callbacks(name));
    try {
      const t0 = performance.now();
      await parser.load({ ...step, numThreads, hysteresis, still });
      return { parser, loadMs: performance.now() - t0, failures };
    } catch (err) {
      parser.dispose();
      failures.push(err.message);
    }
  }
  throw new Error(failures.join('; ') || 'no browser backend to try');
}

/** One line for a loaded parser: "WASM q8 · 2 threads" (the thread count only for WASM). */
export function describeParser({ device, dtype, numThreads }) {
  const threads = device === 'wasm' ? ` · ${numThreads} thread${numThreads > 1 ? 's' : ''}` : '';
  return `${DEVICE_NAMES[device]} ${dtype}${threads}`;
}

// The page's parsers, shared by every view (Parse, live, Edit): one worker per (model, backend choice, WASM
// dtype, threads), loaded once. A failed load is kept too, so a view does not retry it per image.
const SHARED_MAX = 2; // loaded models kept at most (a MiT-B5 is ~100 MB of worker memory each)
const shared = new Map(); // key → {promise, parser?}, oldest request first

/**
 * The shared parser for `config` (its modelId) on `choice` with `wasmDtype`: resolves to {parser, loadMs,
 * failures, cached} (cached: true when another call loaded it; loadMs is then 0). `options` as for
 * loadFirstBackend; its callbacks only see a load this call starts. Don't dispose the parser: the cache owns it
 * (the least recently asked for is disposed when a third model loads).
 */
export function sharedParser(config, choice, wasmDtype, options = {}) {
  const key = JSON.stringify([config.modelId, choice, wasmDtype, options.numThreads ?? null]);
  const hit = shared.get(key);
  if (hit) {
    shared.delete(key); // most recent last
    shared.set(key, hit);
    return hit.promise.then((loaded) => ({ ...loaded, loadMs: 0, cached: true }));
  }
  const entry = {};
  entry.promise = loadFirstBackend(config, choice, wasmDtype, options).then((loaded) => {
    entry.parser = loaded.parser;
    return { ...loaded, cached: false };
  });
  shared.set(key, entry);
  for (const [k, old] of shared) {
    if (shared.size <= SHARED_MAX) break;
    if (k === key || !old.parser) continue; // never the one asked for, nor one still loading
    old.parser.dispose();
    shared.delete(k);
  }
  return entry.promise;
}

export class BrowserParser {
  constructor(config, { onProgress = () => {}, onStatus = () => {} } = {}) {
    this.config = config;
    this.onProgress = onProgress;
    this.onStatus = onStatus;
    this.worker = null;
    this.pending = new Map();
    this.nextId = 1;
    this.info = null;
  }

  /** Load {device, dtype} in a new worker (WASM threads: every core unless `numThreads` says otherwise);
   *  resolves to the worker's `ready` data. */
  load({ device, dtype, numThreads = navigator.hardwareConcurrency || 1, hysteresis = 0, still }) {
    this.dispose();
    const worker = new Worker(this.config.workerUrl, { type: 'module' });
    this.worker = worker;
    return new Promise((resolve, reject) => {
      const fail = (message) => {
        this.failAll(message);
        reject(new Error(message));
      };
      worker.onerror = (event) => {
        event.preventDefault();
        fail(`the worker failed (${event.message || 'script error'}); if static/vendor/ is empty, run `
          + 'scripts/setup.sh');
      };
      worker.onmessage = ({ data: { type, data } }) => {
        switch (type) {
          case 'progress': this.onProgress(data); break;
          case 'status': this.onStatus(data.phase); break;
          case 'ready': this.info = data; resolve(data); break;
          case 'result': case 'detections': this.settle(data.id, null, data); break;
          case 'error':
            if (data.stage === 'load') fail(`loading the ${device} ${dtype} model failed: ${data.message}`);
            else this.settle(data.id, new Error(data.message));
            break;
          default: fail(`unknown message from the worker: ${type}`);
        }
      };
      worker.postMessage({ type: 'load', data: {
        modelRoot: this.config.modelRoot, modelId: this.config.modelId, vendorUrl: this.config.vendorUrl,
        device, dtype, numThreads, inputSize: this.config.inputSize, facesUrl: facesUrl(this.config),
        labelsGraph: (this.config.labelsGraph || []).includes(dtype), hysteresis, still,
      } });
    });
  }

  /**
   * Parse RGBA pixels (copied, the caller keeps its own). `faces`: 'auto' | 'largest' | 'off' (default: the
   * whole image, as before faces); `track` (live frames): {maxAgeMs, motion, tiles, maxFaces, hold}, see worker.js;
   * `labelsMax` (live frames): the model's labels at most this many px a side, scaled up (0: full size).
   * Resolves to {labels, width, height, timings, faces, found, owner, note}: `owner` is null without faces, else
   * a Uint8Array (0 = no face, k = face k).
   */
  parse(rgba, width, height, { faces = 'off', track = null, labelsMax = 0 } = {}) {
    return this.request('parse', rgba, { width, height, faces, track, labelsMax });
  }

  /** Only find the faces (ordered, with their crops): resolves to {faces, note, timings}. */
  detect(rgba, width, height) {
    return this.request('detect', rgba, { width, height });
  }

  request(type, rgba, data) {
    if (!this.worker) return Promise.reject(new Error('no model loaded'));
    const id = this.nextId++;
    const copy = new Uint8ClampedArray(rgba).buffer;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type, data: { id, rgba: copy, ...data } }, [copy]);
    });
  }

  settle(id, error, value) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    if (error) entry.reject(error);
    else if (!value.labels) entry.resolve(value);
    else entry.resolve({ ...value, labels: new Uint8Array(value.labels), owner: value.owner ? new Uint8Array(value.owner) : null });
  }

  failAll(message) {
    for (const { reject } of this.pending.values()) reject(new Error(message));
    this.pending.clear();
  }

  dispose() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.info = null;
    this.failAll('the parser was replaced');
  }
}

// bench/live_graphs.py's page worker: time one export's labels graph in this browser's ONNX Runtime Web (the
// one transformers.js bundles: the page's runtime), WASM, session.run only, at a given output size.
import { AutoModel, Tensor, env } from '../vendor/transformers.min.js';

onmessage = async ({ data: cfg }) => {
  try {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = '/models/';
    const wasm = env.backends.onnx.wasm;
    const base = new URL('../vendor/', self.location.href).href;
    wasm.wasmPaths = { mjs: `${base}ort-wasm-simd-threaded.mjs`, wasm: `${base}ort-wasm-simd-threaded.wasm` };
    wasm.numThreads = cfg.threads;
    const model = await AutoModel.from_pretrained(cfg.model, { device: 'wasm', dtype: cfg.dtype, model_file_name: 'labels' });
    const session = Object.values(model.sessions)[0];
    const { size, height, width } = cfg;
    const feeds = {
      pixel_values: new Tensor('float32', new Float32Array(3 * size * size).map(() => Math.random()), [1, 3, size, size]),
      output_size: new Tensor('int64', BigInt64Array.from([BigInt(height), BigInt(width)]), [2]),
      previous_labels: new Tensor('uint8', new Uint8Array(height * width), [1, height, width]),
      hysteresis: new Tensor('float32', Float32Array.of(0), [1]),
    };
    const raw = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.ort_tensor]));
    for (let i = 0; i < 3; i++) await session.run(raw);
    const times = [];
    for (let i = 0; i < cfg.runs; i++) {
      const t = performance.now();
      await session.run(raw);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    postMessage({ median: times[times.length >> 1], best: times[0] });
  } catch (err) {
    postMessage({ error: String(err?.stack || err) });
  }
};

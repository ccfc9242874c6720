// The Parse view: upload / paste / camera → parse in the browser (worker) or on the server → overlay,
// legend, toggles, isolate, downloads. Mounted by the Gradio page into <div class="fs-parse">.
//
// The root element carries data-state (idle | loading | parsing | done | error) and data-backend, for
// people reading the DOM and for the tests.
import { DEVICE_NAMES, loadFirstBackend } from './browser-parser.js';
import { download } from './downloads.js';
import { ImageInputError, readImage } from './image-input.js';
import { LiveMode } from './live.js';
import { overlayImage } from './overlay.js';
import { RecolourPanel } from './recolour-panel.js';
import { areaPercent } from './segment.js';
import { describeEvent } from './api-client.js';
import { parseOnServer } from './server-parse.js';

const TEMPLATE = `
<div class="fs-toolbar">
  <label class="fs-button">Choose image<input type="file" accept="image/*" data-role="file" hidden></label>
  <button type="button" class="fs-button" data-role="camera">Live camera</button>
  <span class="fs-hint">…or paste an image (Ctrl+V)</span>
  <label>Run on <select data-role="backend">
    <option value="auto">this browser (WebGPU → WASM)</option>
    <option value="webgpu">this browser, WebGPU only</option>
    <option value="wasm">this browser, WASM</option>
    <option value="server">the server</option>
  </select></label>
  <label>WASM precision <select data-role="dtype"></select></label>
</div>
<div data-role="recolour"></div>
<div data-role="live"></div>
<p class="fs-error" data-role="error" role="alert" hidden></p>
<p class="fs-status" data-role="status" role="status">Choose, paste or take a photo of a face.</p>
<ul class="fs-progress" data-role="progress"></ul>
<div class="fs-main">
  <div class="fs-stage"><canvas data-role="canvas" title="Click a region to isolate it"></canvas></div>
  <div class="fs-side" data-role="side" hidden>
    <label>Opacity <input type="range" min="0" max="1" step="0.05" value="0.5" data-role="opacity"></label>
    <p class="fs-isolated" data-role="isolated"></p>
    <ul class="fs-legend" data-role="legend"></ul>
    <div class="fs-timings" data-role="timings"></div>
    <div class="fs-downloads">
      <button type="button" class="fs-button" data-download="labels">Label map PNG</button>
      <button type="button" class="fs-button" data-download="mask">Colour mask PNG</button>
      <button type="button" class="fs-button" data-download="cutout">Cut-out of shown classes</button>
      <button type="button" class="fs-button" data-download="json">Areas JSON</button>
    </div>
  </div>
</div>`;

const ms = (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);

class ParseView {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.labels = [];
    this.image = null; // {file, bitmap, rgba, width, height, name}
    this.result = null; // {labels, width, height, backend, timings}
    this.parser = null; // BrowserParser once loaded
    this.parserKey = null;
    this.browserFailure = null; // why the browser can't parse, once it failed to load
    this.busy = false;
    this.queued = false; // back-pressure: while a parse runs, later requests collapse into one
    this.isolated = null;
    root.innerHTML = TEMPLATE;
    this.el = Object.fromEntries([...root.querySelectorAll('[data-role]')].map((e) => [e.dataset.role, e]));
    // Recolour (static/js/recolour-panel.js) and live mode (static/js/live.js) own their controls.
    this.recolour = new RecolourPanel(this.el.recolour, {
      onChange: () => this.render(),
      source: () => (this.live.running ? { canvas: this.live.canvas, name: 'camera' }
        : this.result ? { canvas: this.el.canvas, name: this.image.name.replace(/\.[^.]+$/, '') } : null),
      onError: (message) => this.showError(message),
    });
    this.live = new LiveMode(this.el.live, config, {
      labels: () => this.labels, opacity: () => Number(this.el.opacity.value), backend: () => this.el.backend.value,
      dtype: () => this.el.dtype.value, recolour: this.recolour, onSnapshot: (file) => this.handleFile(file),
      onError: (message) => this.showError(message),
    });
    this.setState('idle');
  }

  async init() {
    const dtypes = this.config.dtypes.length ? this.config.dtypes : ['q8'];
    this.el.dtype.innerHTML = dtypes.map((d) => `<option value="${d}">${d}</option>`).join('');
    this.el.dtype.value = dtypes.includes('q8') ? 'q8' : dtypes[0];
    this.bindEvents();
    try {
      const response = await fetch(this.config.labelsUrl);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const table = await response.json();
      this.labels = table.labels;
      this.recolour.setGroups(table.groups);
    } catch (err) {
      this.showError(`Could not load the label table ${this.config.labelsUrl} (${err.message}): run scripts/setup.sh.`);
    }
    this.visible = this.labels.map(() => true);
    if (this.config.missing) this.showError(`No face parser to run: ${this.config.missing}`);
  }

  bindEvents() {
    const { el } = this;
    el.file.addEventListener('change', () => {
      const [file] = el.file.files;
      el.file.value = '';
      this.handleFile(file ?? null);
    });
    document.addEventListener('paste', (event) => {
      if (!this.root.isConnected || !this.root.offsetParent) return; // only while the Parse tab shows
      const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith('image/'));
      if (file) { event.preventDefault(); this.handleFile(file); }
    });
    el.camera.addEventListener('click', () => { this.showError(''); this.live.start(); });
    el.backend.addEventListener('change', () => this.image && this.requestParse());
    el.dtype.addEventListener('change', () => this.image && this.requestParse());
    el.opacity.addEventListener('input', () => this.render());
    el.canvas.addEventListener('click', (event) => this.isolateAt(event));
    for (const button of this.root.querySelectorAll('[data-download]')) {
      button.addEventListener('click', () => this.download(button.dataset.download));
    }
  }

  setState(state) {
    this.root.dataset.state = state;
  }

  setStatus(text) {
    this.el.status.textContent = text;
  }

  showError(message) {
    this.el.error.textContent = message;
    this.el.error.hidden = !message;
  }

  // 1. Input ------------------------------------------------------------------------------------------
  async handleFile(file) {
    this.showError('');
    let image;
    try {
      image = await readImage(file, this.config);
    } catch (err) {
      const message = err instanceof ImageInputError ? err.message : `Could not read the image: ${err.message}`;
      this.showError(message);
      this.setState('error');
      return;
    }
    this.image = { ...image, file };
    this.result = null;
    this.isolated = null;
    this.el.side.hidden = true;
    const { canvas } = this.el;
    canvas.width = image.width;
    canvas.height = image.height;
    canvas.getContext('2d').drawImage(image.bitmap, 0, 0);
    await this.requestParse();
  }

  // 2. Parse ------------------------------------------------------------------------------------------
  async requestParse() {
    if (this.busy) { this.queued = true; return; }
    this.busy = true;
    try {
      do {
        this.queued = false;
        await this.parseCurrent();
      } while (this.queued);
    } finally {
      this.busy = false;
    }
  }

  async parseCurrent() {
    if (this.config.missing) return;
    const image = this.image;
    const choice = this.el.backend.value;
    this.setState('parsing');
    let result;
    try {
      if (choice === 'server') {
        result = await this.parseServer(image, 'you chose the server');
      } else {
        try {
          result = await this.parseBrowser(image, choice);
        } catch (err) {
          this.browserFailure = err.message;
          result = await this.parseServer(image, `the browser could not run the model: ${err.message}`);
        }
      }
    } catch (err) {
      this.showError(err.message);
      this.setStatus('Parsing failed; the page still works — try another image or backend.');
      this.setState('error');
      return;
    }
    if (image !== this.image) return; // a newer image arrived meanwhile; its parse follows
    this.result = result;
    this.isolated = null;
    this.visible = this.labels.map(() => true);
    this.setStatus(result.notice);
    this.root.dataset.backend = result.backend;
    this.showResult();
    this.setState('done');
  }

  async ensureBrowserParser(choice) {
    const wasmDtype = this.el.dtype.value;
    const key = `${choice}/${wasmDtype}`;
    if (this.parser && this.parserKey === key) return { parser: this.parser, loadMs: 0 };
    if (this.failedKey === key) throw new Error(this.browserFailure); // don't retry a failed load per image
    this.parser?.dispose();
    this.parser = null;
    try {
      const loaded = await loadFirstBackend(this.config, choice, wasmDtype, {
        onStep: (name) => { this.setStatus(`Loading the model for ${name}…`); this.el.progress.innerHTML = ''; },
        callbacks: (name) => ({
          onProgress: (event) => this.showProgress(event),
          onStatus: (phase) => this.setStatus(`${name}: ${phase}…`),
        }),
      });
      this.parser = loaded.parser;
      this.parserKey = key;
      return loaded;
    } catch (err) {
      this.failedKey = key;
      throw err;
    }
  }

  async parseBrowser(image, choice) {
    const { parser, loadMs, failures = [] } = await this.ensureBrowserParser(choice);
    this.setStatus('Parsing in this browser…');
    const out = await parser.parse(image.rgba, image.width, image.height);
    const { device, dtype, numThreads, isolated } = parser.info;
    const threads = device === 'wasm' ? ` · ${numThreads} thread${numThreads > 1 ? 's' : ''}` : '';
    const skipped = failures.length ? ` (skipped: ${failures.join('; ')})` : '';
    return {
      labels: out.labels, width: out.width, height: out.height, backend: device, dtype,
      timings: { load: loadMs, ...out.timings },
      notice: `Parsed in this browser · ${DEVICE_NAMES[device]} ${dtype}${threads}`
        + `${isolated ? '' : ' (not cross-origin isolated)'} — the image never left this page.${skipped}`,
    };
  }

  async parseServer(image, reason) {
    const dtype = this.el.dtype.value;
    this.setStatus(`Parsing on the server (${reason})…`);
    const out = await parseOnServer(image.file, dtype, this.config.api.parse, (event) => {
      const line = describeEvent(event, 'parsing');
      if (line) this.setStatus(`${line} (${reason})`);
    });
    return {
      labels: out.labels, width: out.width, height: out.height, backend: 'server', dtype,
      timings: out.timings,
      notice: `Parsed on the server — ${reason}. ${out.summary.backend}, ${dtype}.`,
    };
  }

  showProgress(event) {
    if (!event.file) return;
    const id = `fs-progress-${event.file.replace(/[^\w]/g, '_')}`;
    let item = this.el.progress.querySelector(`#${id}`);
    if (!item) {
      item = document.createElement('li');
      item.id = id;
      item.innerHTML = '<span></span> <progress max="100"></progress>';
      this.el.progress.append(item);
    }
    const percent = event.status === 'done' ? 100 : event.progress ?? 0;
    item.querySelector('span').textContent = event.file;
    item.querySelector('progress').value = percent;
    if (event.status === 'done') item.classList.add('fs-done');
  }

  // 3. Show -------------------------------------------------------------------------------------------
  showResult() {
    this.el.progress.innerHTML = '';
    this.el.side.hidden = false;
    const area = areaPercent(this.result.labels, this.labels.length);
    this.el.legend.innerHTML = '';
    for (const label of this.labels) {
      if (area[label.id] === 0) continue;
      const item = document.createElement('li');
      item.dataset.label = label.name;
      item.innerHTML = `<label><input type="checkbox" checked> <span class="fs-swatch"></span> `
        + `<span class="fs-name"></span></label> <span class="fs-area">${area[label.id] < 0.05 ? '< 0.1' : area[label.id].toFixed(1)} %</span>`;
      item.querySelector('.fs-swatch').style.background = `rgb(${label.color.join(',')})`;
      item.querySelector('.fs-name').textContent = label.title;
      item.querySelector('input').addEventListener('change', (event) => {
        this.visible[label.id] = event.target.checked;
        this.render();
      });
      item.querySelector('.fs-name').addEventListener('click', (event) => {
        event.preventDefault();
        this.isolate(label.id);
      });
      this.el.legend.append(item);
    }
    this.showTimings();
    this.render();
  }

  showTimings() {
    const rows = Object.entries(this.result.timings).map(([k, v]) => `<dt>${k}</dt><dd>${ms(v)}</dd>`);
    this.el.timings.innerHTML = `<p>Time per stage (${this.result.backend})</p><dl>${rows.join('')}</dl>`;
  }

  render() {
    if (!this.result) return;
    const { width, height, labels } = this.result;
    const t0 = performance.now();
    const recoloured = this.recolour.apply(this.image.rgba, labels, width, height);
    const image = recoloured ? new ImageData(recoloured, width, height) : overlayImage({
      rgba: this.image.rgba, labels, width, height, palette: this.labels.map((l) => l.color),
      opacity: Number(this.el.opacity.value), visible: this.visible, isolated: this.isolated,
    });
    this.el.canvas.getContext('2d').putImageData(image, 0, 0);
    this.result.timings.render = performance.now() - t0;
    const name = this.isolated === null ? '' : this.labels[this.isolated].title;
    this.el.isolated.textContent = name ? `Isolated: ${name} (click it again to show all)` : '';
    this.showTimings();
  }

  isolate(id) {
    this.isolated = this.isolated === id ? null : id;
    this.render();
  }

  isolateAt(event) {
    if (!this.result) return;
    const rect = this.el.canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * this.result.width);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * this.result.height);
    if (x < 0 || y < 0 || x >= this.result.width || y >= this.result.height) return;
    this.isolate(this.result.labels[y * this.result.width + x]);
  }

  async download(kind) {
    if (!this.result) return;
    const keep = this.labels.map((l) => (this.isolated === null ? this.visible[l.id] && l.id > 0 : l.id === this.isolated));
    try {
      await download(kind, {
        image: this.image, result: this.result, labels: this.labels, keep,
        meta: { backend: this.result.backend, dtype: this.result.dtype, timings_ms: this.result.timings },
      });
    } catch (err) {
      this.showError(`The download failed: ${err.message}`);
    }
  }
}

/** Mount the view into `element` (the gr.HTML wrapper); safe to call again on re-render. */
export function mount(element) {
  const root = element.querySelector('.fs-parse') || element;
  if (root.dataset.mounted) return root.view;
  root.dataset.mounted = '1';
  const view = new ParseView(root, JSON.parse(root.dataset.config));
  root.view = view;
  view.init();
  return view;
}

// The Parse view: upload / paste / camera → parse in the browser (worker) or on the server → overlay,
// legend, toggles, isolate, downloads. Mounted by the Gradio page into <div class="fs-parse">.
//
// The root element carries data-state (idle | loading | parsing | done | error), data-backend and, after a
// parse, data-faces (how many faces were parsed on their own crops), for people reading the DOM and the tests.
//
// Faces (static/js/faces.js, issue 15): with `auto` (default) every face is found, cropped, parsed on its own
// and pasted back; `largest` keeps the largest face; `off` parses the whole image as before. Faces are
// numbered on the picture (HTML tags over the canvas, so the canvas stays the plain overlay); the legend,
// the overlay and the downloads show all faces or one.
import { describeParser, sharedParser } from './browser-parser.js';
import { download, save } from './downloads.js';
import { faceAreaPercent, faceLabels } from './faces.js';
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
  <label>Faces <select data-role="faces">
    <option value="auto">find every face (auto)</option>
    <option value="largest">the largest face</option>
    <option value="off">off: the whole image</option>
  </select></label>
</div>
<div data-role="recolour"></div>
<div data-role="live"></div>
<p class="fs-error" data-role="error" role="alert" hidden></p>
<p class="fs-status" data-role="status" role="status">Choose, paste or take a photo of a face.</p>
<ul class="fs-progress" data-role="progress"></ul>
<div class="fs-main">
  <div class="fs-stage"><div class="fs-canvas-wrap">
    <canvas data-role="canvas" title="Click a region to isolate it"></canvas>
    <div class="fs-face-layer" data-role="face-layer"></div>
  </div></div>
  <div class="fs-side" data-role="side" hidden>
    <label>Opacity <input type="range" min="0" max="1" step="0.05" value="0.5" data-role="opacity"></label>
    <label data-role="face-pick-label" hidden>Show <select data-role="face-pick"></select></label>
    <p class="fs-faces-note" data-role="faces-note" hidden></p>
    <p class="fs-isolated" data-role="isolated"></p>
    <ul class="fs-legend" data-role="legend"></ul>
    <div class="fs-timings" data-role="timings"></div>
    <div class="fs-downloads">
      <button type="button" class="fs-button" data-download="labels">Label map PNG</button>
      <button type="button" class="fs-button" data-download="mask">Colour mask PNG</button>
      <button type="button" class="fs-button" data-download="cutout">Cut-out of shown classes</button>
      <button type="button" class="fs-button" data-download="json">Areas JSON</button>
      <button type="button" class="fs-button" data-download="crop" hidden>Face crop PNG</button>
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
    this.result = null; // {labels, width, height, backend, timings, faces, owner, note}
    this.face = 0; // the face shown: 0 = all, k = face k
    this.parser = null; // the shared BrowserParser (browser-parser.js sharedParser) last used
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
    el.faces.addEventListener('change', () => this.image && this.requestParse());
    el['face-pick'].addEventListener('change', () => this.showFace(Number(el['face-pick'].value)));
    el['face-layer'].addEventListener('click', (event) => {
      const tag = event.target.closest('[data-face]');
      if (tag) this.showFace(this.face === Number(tag.dataset.face) ? 0 : Number(tag.dataset.face));
    });
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
    this.el['face-layer'].innerHTML = '';
    delete this.root.dataset.faces;
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
    this.face = 0;
    this.visible = this.labels.map(() => true);
    this.setStatus(result.notice);
    this.root.dataset.backend = result.backend;
    this.root.dataset.faces = String(result.faces.length);
    this.showResult();
    this.setState('done');
  }

  /** The page's shared parser for the chosen backend and dtype (browser-parser.js keeps one per choice, and a
   *  failed load, so it is not retried per image). */
  async ensureBrowserParser(choice) {
    const loaded = await sharedParser(this.config, choice, this.el.dtype.value, {
      onStep: (name) => { this.setStatus(`Loading the model for ${name}…`); this.el.progress.innerHTML = ''; },
      callbacks: (name) => ({
        onProgress: (event) => this.showProgress(event),
        onStatus: (phase) => this.setStatus(`${name}: ${phase}…`),
      }),
    });
    this.parser = loaded.parser;
    return loaded;
  }

  async parseBrowser(image, choice) {
    const { parser, loadMs, failures = [] } = await this.ensureBrowserParser(choice);
    this.setStatus('Parsing in this browser…');
    const facesMode = this.el.faces.value;
    const out = await parser.parse(image.rgba, image.width, image.height, { faces: facesMode });
    const { device, dtype, isolated } = parser.info;
    const skipped = failures.length ? ` (skipped: ${failures.join('; ')})` : '';
    return {
      labels: out.labels, width: out.width, height: out.height, backend: device, dtype,
      faces: out.faces, owner: out.owner, note: this.detectorNote(parser.info.detector, out.note), facesMode,
      timings: { load: loadMs, ...out.timings },
      notice: `Parsed in this browser · ${describeParser(parser.info)}`
        + `${isolated ? '' : ' (not cross-origin isolated)'} — the image never left this page.${skipped}`,
    };
  }

  async parseServer(image, reason) {
    const dtype = this.el.dtype.value;
    this.setStatus(`Parsing on the server (${reason})…`);
    const facesMode = this.el.faces.value;
    const out = await parseOnServer(image.file, dtype, facesMode, this.config.api.parse, (event) => {
      const line = describeEvent(event, 'parsing');
      if (line) this.setStatus(`${line} (${reason})`);
    });
    return {
      labels: out.labels, width: out.width, height: out.height, backend: 'server', dtype,
      faces: out.faces, owner: out.owner, note: out.note, facesMode,
      timings: out.timings,
      notice: `Parsed on the server — ${reason}. ${out.summary.backend}, ${dtype}.`,
    };
  }

  /** The note to show under the picture: the detector's trouble (once per load) or the parse's own. */
  detectorNote(detector, note) {
    if (this.el.faces.value === 'off') return null;
    return note;
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
    const { faces, note } = this.result;
    const pick = this.el['face-pick'];
    pick.innerHTML = `<option value="0">all faces</option>${faces.map((f, k) => `<option value="${k + 1}">face ${k + 1}</option>`).join('')}`;
    pick.value = String(this.face);
    this.el['face-pick-label'].hidden = faces.length < 2;
    this.el['faces-note'].textContent = note || '';
    this.el['faces-note'].hidden = !note;
    this.root.querySelector('[data-download=crop]').hidden = !faces.length;
    this.showFaceTags();
    this.showLegend();
    this.showTimings();
    this.render();
  }

  /** Numbered boxes over the canvas, in % of the image so they follow its displayed size. */
  showFaceTags() {
    const { faces, width, height } = this.result;
    const layer = this.el['face-layer'];
    layer.innerHTML = '';
    faces.forEach((face, k) => {
      const [x0, y0, x1, y1] = face.box;
      const tag = document.createElement('button');
      tag.type = 'button';
      tag.className = 'fs-face-tag';
      tag.dataset.face = String(k + 1);
      tag.title = `Face ${k + 1} (score ${face.score.toFixed(2)}): click to show it alone`;
      tag.style.left = `${(100 * Math.max(0, x0)) / width}%`;
      tag.style.top = `${(100 * Math.max(0, y0)) / height}%`;
      tag.style.width = `${(100 * (Math.min(width, x1) - Math.max(0, x0))) / width}%`;
      tag.style.height = `${(100 * (Math.min(height, y1) - Math.max(0, y0))) / height}%`;
      tag.innerHTML = `<span class="fs-face-number">${k + 1}</span>`;
      layer.append(tag);
    });
    this.markFaceTags();
  }

  markFaceTags() {
    for (const tag of this.el['face-layer'].children) {
      tag.classList.toggle('fs-face-dim', this.face !== 0 && Number(tag.dataset.face) !== this.face);
      tag.setAttribute('aria-pressed', String(Number(tag.dataset.face) === this.face));
    }
  }

  /** Show face k alone (0: all faces): legend, overlay, downloads. */
  showFace(k) {
    if (!this.result || k < 0 || k > this.result.faces.length) return;
    this.face = k;
    this.el['face-pick'].value = String(k);
    this.isolated = null;
    this.markFaceTags();
    this.showLegend();
    this.render();
  }

  /** The label map shown: all faces, or face k's pixels only. */
  shownLabels() {
    const { labels, owner } = this.result;
    return this.face && owner ? faceLabels(labels, owner, this.face) : labels;
  }

  showLegend() {
    const { labels, owner } = this.result;
    const area = this.face && owner ? faceAreaPercent(labels, owner, this.face, this.labels.length)
      : areaPercent(labels, this.labels.length);
    this.el.legend.dataset.face = String(this.face);
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
  }

  showTimings() {
    const rows = Object.entries(this.result.timings).map(([k, v]) => `<dt>${k}</dt><dd>${ms(v)}</dd>`);
    this.el.timings.innerHTML = `<p>Time per stage (${this.result.backend})</p><dl>${rows.join('')}</dl>`;
  }

  render() {
    if (!this.result) return;
    const { width, height } = this.result;
    const labels = this.shownLabels();
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

  /** The exact square crop each shown face was parsed from (black outside the image), one PNG a face. */
  async downloadCrops(name) {
    const { faces } = this.result;
    const { width, height, rgba } = this.image;
    for (const k of this.face ? [this.face] : faces.map((_, i) => i + 1)) {
      const [x0, y0, x1, y1] = faces[k - 1].crop;
      const canvas = new OffscreenCanvas(x1 - x0, y1 - y0);
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, x1 - x0, y1 - y0);
      ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), -x0, -y0);
      const stem = name.replace(/\.[^.]+$/, '').replace(/\.face\d+$/, '');
      save(await canvas.convertToBlob({ type: 'image/png' }), `${stem}.face${k}.crop.png`);
    }
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
    this.isolate(this.shownLabels()[y * this.result.width + x]);
  }

  /** The faces as the JSON download (and the server summary) list them: box, score, crop, area_percent. */
  facesJson() {
    const { labels, owner, faces } = this.result;
    const round = (v) => Number(v.toFixed(2));
    return faces.map((face, k) => {
      const area = owner ? faceAreaPercent(labels, owner, k + 1, this.labels.length) : null;
      return {
        face: k + 1, box: face.box.map(round), score: Number(face.score.toFixed(4)), crop: face.crop,
        ...(area && { area_percent: Object.fromEntries(this.labels.map((l) => [l.name, Number(area[l.id].toFixed(4))])) }),
      };
    });
  }

  async download(kind) {
    if (!this.result) return;
    const keep = this.labels.map((l) => (this.isolated === null ? this.visible[l.id] && l.id > 0 : l.id === this.isolated));
    // One face: its pixels only, and ".faceK" in the file names; all faces: the whole map and every face.
    const { face } = this;
    const name = face ? this.image.name.replace(/(\.[^.]+)?$/, `.face${face}$1`) : this.image.name;
    const faces = this.facesJson();
    try {
      if (kind === 'crop') { await this.downloadCrops(name); return; }
      await download(kind, {
        image: { ...this.image, name }, result: { ...this.result, labels: this.shownLabels() },
        labels: this.labels, keep,
        meta: { backend: this.result.backend, dtype: this.result.dtype, timings_ms: this.result.timings,
          faces_mode: this.result.facesMode, face: face || null, faces: face ? [faces[face - 1]] : faces,
          ...(this.result.note && { note: this.result.note }) },
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

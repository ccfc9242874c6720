// The Edit view: a photo is parsed in this browser, the user picks regions (and paints), sets grow /
// feather and a prompt; only after an explicit confirmation are image + mask uploaded, in one request,
// to the server's `inpaint` endpoint (or the image alone to `restyle`). Root data-state:
// idle | parsing | ready | confirming | uploading | generating | done | error. The call is a named payload
// ({image, mask, prompt, grow, …}); its fields, defaults and limits come from the server's page config.
// Faces (issue 15): the parse finds every face (worker + static/js/faces.js). With two or more, the user picks
// faces — by clicking one on the picture (brush off) or ticking its number — then each face's regions and its
// own prompt; one request carries a face-numbered mask (value k = face k), the face map (owner) and
// `faces` = [{face, prompt, mask_regions}]. Root data-faces = faces found, data-chosen = "2,3".
import { call, describeEvent, fileUrl } from './api-client.js';
import { sharedParser } from './browser-parser.js';
import { ImageInputError, readImage } from './image-input.js';
import { combineMask, coverage, faceMask, growMask, stamp } from './mask.js';
import { encodeGrayPng } from './png.js';

const TEMPLATE = `
<div class="fs-toolbar">
  <label class="fs-button">Choose image<input type="file" accept="image/*" data-role="file" hidden></label>
  <span class="fs-hint">…or paste one (Ctrl+V), or use “Edit” under a generated image.</span>
</div>
<p class="fs-error" data-role="error" role="alert" hidden></p>
<p class="fs-status" data-role="status" role="status">Choose a portrait. It is parsed in this browser; nothing is uploaded until you confirm.</p>
<div class="fs-main">
  <div class="fs-stage"><canvas data-role="canvas" title="Paint or erase with the brush"></canvas></div>
  <div class="fs-side" data-role="side" hidden>
    <fieldset data-role="faces-box" hidden><legend>Faces</legend>
      <p class="fs-hint">Click a face on the picture (brush off) or tick its number, then pick its regions and
        write its prompt. Each face is regenerated on its own; the others stay as they are.</p>
      <ul class="fs-faces" data-role="faces"></ul>
    </fieldset>
    <fieldset><legend data-role="regions-title">Regions</legend><ul class="fs-regions" data-role="regions"></ul></fieldset>
    <fieldset><legend>Brush</legend>
      <div class="fs-brush-row">
        <label><input type="radio" name="fs-brush" value="off" checked> off</label>
        <label><input type="radio" name="fs-brush" value="paint"> paint</label>
        <label><input type="radio" name="fs-brush" value="erase"> erase</label>
      </div>
      <label>size <input type="range" min="2" max="80" value="16" data-role="brush-size"></label>
      <button type="button" class="fs-button" data-role="clear-strokes">Clear strokes</button>
    </fieldset>
    <fieldset><legend>Mask</legend>
      <label>Grow / shrink <input type="range" data-role="grow"> <output data-role="grow-out"></output> px</label>
      <label>Feather <input type="range" data-role="feather"> <output data-role="feather-out"></output> px</label>
      <p class="fs-hint" data-role="coverage"></p>
    </fieldset>
    <fieldset><legend>Regenerate</legend>
      <label><input type="radio" name="fs-mode" value="inpaint" checked> only the selected regions</label>
      <label><input type="radio" name="fs-mode" value="restyle"> restyle the whole image</label>
      <textarea data-role="prompt" rows="2" placeholder="short red curly hair"></textarea>
      <input data-role="negative" placeholder="negative prompt (optional)">
      <div class="fs-numbers">
        <label>Strength <input type="number" data-role="strength"></label>
        <label>Steps <input type="number" data-role="steps"></label>
        <label>Guidance <input type="number" data-role="guidance"></label>
        <label>Seed <input type="number" data-role="seed" title="-1 = random"></label>
      </div>
      <button type="button" class="fs-button fs-primary" data-role="send" disabled>Regenerate…</button>
    </fieldset>
  </div>
</div>
<div class="fs-confirm" data-role="confirm" role="dialog" aria-modal="true" hidden><div>
  <p data-role="confirm-text"></p>
  <div class="fs-actions">
    <button type="button" class="fs-button" data-role="confirm-no">Cancel</button>
    <button type="button" class="fs-button fs-primary" data-role="confirm-yes">Upload and regenerate</button>
  </div>
</div></div>
<div class="fs-result" data-role="result" hidden>
  <progress data-role="gen-progress" max="1" value="0"></progress>
  <div class="fs-compare" data-role="compare">
    <img data-role="before" alt="before"><img data-role="after" alt="after">
    <input type="range" min="0" max="100" value="50" data-role="split" aria-label="before / after">
  </div>
  <p data-role="result-info"></p>
  <a class="fs-button" data-role="result-download" download>Download PNG (with parameters)</a>
</div>`;

class EditView {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.labels = [];
    this.image = null; // {file, rgba, width, height, name}
    this.parse = null; // Uint8Array label map
    this.owner = null; // Uint8Array owner map (0 = no face, k = face k), or null
    this.faces = []; // the parse's faces, face k = faces[k - 1]
    this.chosen = new Map(); // face mode: face k → ticked label ids (boolean per label)
    this.active = 0; // the face whose regions the list shows and the brush paints
    this.selected = [];
    this.parser = null;
    root.innerHTML = TEMPLATE;
    this.el = Object.fromEntries([...root.querySelectorAll('[data-role]')].map((e) => [e.dataset.role, e]));
    // Limits and defaults of the number inputs: the inpaint endpoint's fields, as the server defines them.
    for (const f of config.api.inpaint.fields) {
      const input = this.el[f.name];
      if (!input || (f.kind !== 'int' && f.kind !== 'float')) continue;
      const attrs = { min: f.minimum, max: f.maximum, step: f.step, value: f.default }; // value last: ranges clamp
      for (const [key, value] of Object.entries(attrs)) if (value !== undefined) input[key] = value;
    }
    this.maxFaces = config.api.inpaint.fields.find((f) => f.name === 'faces')?.maximum ?? 1;
    this.root.dataset.state = 'idle';
    this.uploads = 0; // requests that carried the image (for people and tests reading the DOM)
  }

  async init() {
    this.bind();
    const response = await fetch(this.config.labelsUrl).catch(() => null);
    if (response?.ok) this.labels = (await response.json()).labels;
    else this.fail(`Could not load the label table ${this.config.labelsUrl}: run scripts/setup.sh.`);
    this.selected = this.labels.map(() => false);
    if (this.config.generationUnavailable) {
      this.el.send.title = this.config.generationUnavailable;
    }
    window.faceStudioEdit = this; // the Generate view's "Edit" button hands images over through this
  }

  bind() {
    const { el } = this;
    el.file.addEventListener('change', () => { const [f] = el.file.files; el.file.value = ''; this.load(f ?? null); });
    document.addEventListener('paste', (event) => {
      if (!this.root.offsetParent) return; // only while the Edit tab shows
      const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith('image/'));
      if (file) { event.preventDefault(); this.load(file); }
    });
    for (const input of [el.grow, el.feather]) input.addEventListener('input', () => this.render());
    el['clear-strokes'].addEventListener('click', () => { this.painted.fill(0); this.erased.fill(0); this.render(); });
    el.prompt.addEventListener('input', () => this.updateSend());
    for (const r of this.root.querySelectorAll('input[name="fs-mode"]')) r.addEventListener('change', () => this.render());
    el.send.addEventListener('click', () => this.askConfirm());
    el['confirm-no'].addEventListener('click', () => this.closeConfirm());
    el['confirm-yes'].addEventListener('click', () => this.send());
    el.split.addEventListener('input', () => { el.after.style.clipPath = `inset(0 0 0 ${el.split.value}%)`; });
    let painting = false;
    el.canvas.addEventListener('pointerdown', (e) => { painting = this.brush(e); });
    el.canvas.addEventListener('pointermove', (e) => { if (painting) this.brush(e); });
    window.addEventListener('pointerup', () => { painting = false; });
  }

  get mode() { return this.root.querySelector('input[name="fs-mode"]:checked').value; }

  /** Face mode: two or more faces found (one face edits like a portrait, with the classic request). */
  get faceMode() { return this.faces.length > 1; }

  setState(state) { this.root.dataset.state = state; }
  setStatus(text) { this.el.status.textContent = text; }
  fail(message) { this.el.error.textContent = message; this.el.error.hidden = false; this.setState('error'); }
  clearError() { this.el.error.hidden = true; }

  /** Load a File/Blob (upload, paste, or a generated image handed over by the Generate view). */
  async load(file) {
    this.clearError();
    try {
      const image = await readImage(file, this.config);
      this.image = { ...image, file };
    } catch (err) {
      this.fail(err instanceof ImageInputError ? err.message : `Could not read the image: ${err.message}`);
      return;
    }
    const { width, height } = this.image;
    this.painted = new Uint8Array(width * height); // 1 (or, in face mode, the face number) where painted
    this.erased = new Uint8Array(width * height);
    this.owner = null;
    this.faces = [];
    this.chosen = new Map();
    this.active = 0;
    this.el.canvas.width = width;
    this.el.canvas.height = height;
    this.el.result.hidden = true;
    this.setState('parsing');
    this.setStatus('Parsing in this browser (nothing is uploaded)…');
    try {
      const out = await this.parseInBrowser();
      this.parse = out.labels;
      this.owner = out.owner;
      this.faces = out.owner ? out.faces : [];
    } catch (err) {
      this.parse = new Uint8Array(width * height); // no regions: the brush still works
      this.fail(`This browser could not parse the image (${err.message}). Paint the regions with the brush.`);
    }
    this.root.dataset.faces = String(this.faces.length);
    this.el.prompt.placeholder = this.faceMode ? 'prompt for the chosen faces without their own' : 'short red curly hair';
    this.showFaces();
    this.showRegions();
    this.el.side.hidden = false;
    this.setState('ready');
    this.setStatus(this.faceMode
      ? `${this.faces.length} faces found: click one (or tick its number), pick its regions, write its prompt.`
      : 'Pick regions and/or paint, write a prompt, then Regenerate.');
    this.render();
  }

  async parseInBrowser() {
    if (this.config.missing) throw new Error(this.config.missing);
    const wasm = this.config.dtypes.includes('q8') ? 'q8' : this.config.dtypes[0];
    this.parser = (await sharedParser(this.config, 'auto', wasm)).parser; // shared with the Parse view
    const { rgba, width, height } = this.image;
    return this.parser.parse(rgba, width, height, { faces: 'auto' });
  }

  /** The Faces list: a checkbox per face and, once chosen, its prompt. */
  showFaces() {
    const { el } = this;
    el['faces-box'].hidden = !this.faceMode;
    el.faces.innerHTML = '';
    if (!this.faceMode) return;
    this.faces.forEach((face, i) => {
      const k = i + 1;
      const li = document.createElement('li');
      li.dataset.face = String(k);
      li.innerHTML = `<label><input type="checkbox" data-face="${k}"><span class="fs-face-badge">${k}</span>`
        + `face ${k} <small>score ${face.score.toFixed(2)}</small></label>`
        + `<textarea data-role="face-prompt" data-face="${k}" rows="2" hidden `
        + `placeholder="prompt for face ${k} (empty: the prompt below)"></textarea>`;
      li.querySelector('input').addEventListener('change', (e) => {
        if (e.target.checked) this.pickFace(k); else this.dropFace(k);
      });
      li.querySelector('label').addEventListener('click', (e) => {
        if (this.chosen.has(k) && this.active !== k && e.target.tagName !== 'INPUT') { e.preventDefault(); this.pickFace(k); }
      });
      li.querySelector('textarea').addEventListener('input', () => this.updateSend());
      el.faces.append(li);
    });
  }

  /** Choose face k (if there is room) and show its regions. */
  pickFace(k) {
    if (!this.chosen.has(k)) {
      if (this.chosen.size >= this.maxFaces) {
        this.setStatus(`At most ${this.maxFaces} faces in one request (each is one generation): untick one first.`);
        this.syncFaces();
        return;
      }
      this.chosen.set(k, this.labels.map(() => false));
    }
    this.active = k;
    this.syncFaces();
    this.showRegions();
    this.render();
  }

  dropFace(k) {
    this.chosen.delete(k);
    if (this.active === k) this.active = [...this.chosen.keys()].pop() ?? 0;
    this.syncFaces();
    this.showRegions();
    this.render();
  }

  /** Checkboxes, prompts and the root's data-chosen follow `chosen` / `active`. */
  syncFaces() {
    for (const li of this.el.faces.children) {
      const k = Number(li.dataset.face);
      li.querySelector('input').checked = this.chosen.has(k);
      li.querySelector('textarea').hidden = !this.chosen.has(k);
      li.classList.toggle('fs-face-active', k === this.active);
    }
    this.root.dataset.chosen = [...this.chosen.keys()].sort((a, b) => a - b).join(',');
  }

  /** The face under image pixel (x, y): its owner-map pixel, else the detection box holding it; 0 for none. */
  faceAt(x, y) {
    const { width, height } = this.image;
    const px = Math.min(width - 1, Math.max(0, Math.floor(x))), py = Math.min(height - 1, Math.max(0, Math.floor(y)));
    const owned = this.owner[py * width + px];
    if (owned) return owned;
    const k = this.faces.findIndex(({ box: [x0, y0, x1, y1] }) => x >= x0 && x < x1 && y >= y0 && y < y1);
    return k + 1;
  }

  facePrompt(k) {
    return this.el.faces.querySelector(`textarea[data-face="${k}"]`)?.value ?? '';
  }

  showRegions() {
    const counts = new Uint32Array(this.labels.length);
    const face = this.faceMode ? this.active : 0; // face mode: the active face's pixels only
    let total = 0;
    for (let i = 0; i < this.parse.length; i++) {
      if (face && this.owner[i] !== face) continue;
      counts[this.parse[i]]++;
      total++;
    }
    this.el['regions-title'].textContent = face ? `Regions of face ${face}` : 'Regions';
    this.el.regions.innerHTML = '';
    if (this.faceMode && !face) {
      this.el.regions.innerHTML = '<li class="fs-hint">Pick a face first.</li>';
      return;
    }
    this.selected = face ? this.chosen.get(face) : this.labels.map(() => false);
    this.labels.forEach((label, id) => {
      if (!counts[id] || id === 0) return;
      const li = document.createElement('li');
      const [r, g, b] = label.color;
      li.innerHTML = `<label><input type="checkbox" data-class="${label.name}"><span class="fs-swatch" `
        + `style="background: rgb(${r},${g},${b})"></span>${label.title} <small>${(100 * counts[id] / total).toFixed(1)} %</small></label>`;
      li.querySelector('input').checked = Boolean(this.selected[id]);
      li.querySelector('input').addEventListener('change', (e) => { this.selected[id] = e.target.checked; this.render(); });
      this.el.regions.append(li);
    });
  }

  brush(event) {
    const kind = this.root.querySelector('input[name="fs-brush"]:checked').value;
    if (!this.image) return false;
    const rect = this.el.canvas.getBoundingClientRect();
    const scale = this.image.width / rect.width;
    const x = (event.clientX - rect.left) * scale, y = (event.clientY - rect.top) * scale;
    if (kind === 'off') { // face mode: a click picks the face under it
      const k = this.faceMode ? this.faceAt(x, y) : 0;
      if (k) this.pickFace(k);
      return false;
    }
    if (this.faceMode && !this.active) {
      this.setStatus('Pick a face first: the brush paints for the face you picked.');
      return false;
    }
    const radius = Number(this.el['brush-size'].value) * scale / 2;
    const [layer, other] = kind === 'paint' ? [this.painted, this.erased] : [this.erased, this.painted];
    stamp(layer, other, this.image.width, this.image.height, x, y, radius, kind === 'paint' && this.faceMode ? this.active : 1);
    this.render();
    return true;
  }

  /** 0/1 mask; in face mode, face numbers (value k = regenerate for face k). */
  currentMask() {
    if (this.faceMode) return faceMask(this.parse, this.owner, this.chosen, this.painted, this.erased);
    return combineMask(this.parse, this.selected, this.painted, this.erased);
  }

  render() {
    if (!this.image) return;
    const { width, height, rgba } = this.image;
    this.el['grow-out'].textContent = this.el.grow.value;
    this.el['feather-out'].textContent = this.el.feather.value;
    const restyle = this.mode === 'restyle';
    const grown = restyle ? null : growMask(this.currentMask(), width, height, Number(this.el.grow.value));
    const out = new ImageData(width, height);
    for (let i = 0, p = 0; i < width * height; i++, p += 4) {
      const m = grown ? grown[i] : 0;
      out.data[p] = m ? rgba[p] * 0.45 + 255 * 0.55 : rgba[p];
      out.data[p + 1] = m ? rgba[p + 1] * 0.45 : rgba[p + 1];
      out.data[p + 2] = m ? rgba[p + 2] * 0.45 + 120 * 0.55 : rgba[p + 2];
      out.data[p + 3] = 255;
    }
    const ctx = this.el.canvas.getContext('2d');
    ctx.putImageData(out, 0, 0);
    if (this.faceMode) this.drawFaces(ctx);
    this.coverage = grown ? coverage(grown) : 1;
    this.el.coverage.textContent = restyle ? 'The whole image is restyled.'
      : `The mask covers ${(100 * this.coverage).toFixed(1)} % of the image (after grow; feather softens its edge on the server).`;
    this.updateSend();
  }

  /** Face mode: each face's box and number on the picture (chosen ones orange, the active one thicker). */
  drawFaces(ctx) {
    const line = Math.max(1, Math.round(this.image.width / 400));
    ctx.font = `bold ${Math.max(10, Math.round(this.image.width / 40))}px sans-serif`;
    ctx.textBaseline = 'bottom';
    this.faces.forEach(({ box: [x0, y0, x1, y1] }, i) => {
      const k = i + 1;
      const colour = this.chosen.has(k) ? '#f97316' : '#ffffff';
      ctx.strokeStyle = colour;
      ctx.lineWidth = k === this.active ? 3 * line : line;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.fillStyle = colour;
      ctx.fillText(String(k), x0 + line, Math.max(y0, 14));
    });
  }

  updateSend() {
    const prompt = this.el.prompt.value.trim();
    const prompted = this.faceMode && this.mode !== 'restyle'
      ? this.chosen.size > 0 && [...this.chosen.keys()].every((k) => this.facePrompt(k).trim() || prompt)
      : prompt;
    const ready = this.image && prompted
      && (this.mode === 'restyle' || (this.coverage > 0 && this.coverage < this.config.maxCoverage));
    this.el.send.disabled = !ready || Boolean(this.config.generationUnavailable);
  }

  askConfirm() {
    const what = this.mode === 'restyle' ? 'this image'
      : this.faceMode ? 'this image, its mask and its face map' : 'this image and its mask';
    this.el['confirm-text'].textContent = `This uploads ${what} to the server at ${location.origin} for `
      + 'generation (parsing stayed in your browser). Continue?';
    this.el.confirm.hidden = false;
    this.setState('confirming');
  }

  closeConfirm() {
    this.el.confirm.hidden = true;
    this.setState('ready');
  }

  async send() {
    this.el.confirm.hidden = true;
    this.clearError();
    const { width, height, file, name } = this.image;
    const restyle = this.mode === 'restyle';
    const { el } = this;
    const image = new File([file], name || 'image.png', { type: file.type });
    const payload = {
      image, prompt: el.prompt.value, negative: el.negative.value, strength: Number(el.strength.value),
      steps: Number(el.steps.value), guidance: Number(el.guidance.value), seed: Number(el.seed.value),
    };
    const png = async (values, fileName) => new File([await encodeGrayPng(values, width, height)], fileName,
      { type: 'image/png' });
    if (!restyle && this.faceMode) { // one request: a prompt per chosen face, value k in the mask = face k
      const faces = [...this.chosen.keys()].sort((a, b) => a - b).map((k) => ({
        face: k, prompt: this.facePrompt(k),
        mask_regions: this.labels.filter((l, id) => this.chosen.get(k)[id]).map((l) => l.name).join(','),
      }));
      Object.assign(payload, {
        mask: await png(this.currentMask(), 'mask.png'), face_map: await png(this.owner, 'faces.png'),
        faces: JSON.stringify(faces), grow: Number(el.grow.value), feather: Number(el.feather.value),
      });
    } else if (!restyle) {
      const mask = this.currentMask().map((v) => v * 255);
      Object.assign(payload, {
        mask: await png(mask, 'mask.png'),
        grow: Number(el.grow.value), feather: Number(el.feather.value),
        mask_regions: this.labels.filter((l, id) => this.selected[id]).map((l) => l.name).join(','),
      });
    }
    el.result.hidden = false;
    el['gen-progress'].removeAttribute('value');
    try {
      const onEvent = (e) => {
        if (e.type === 'uploading') { this.setState('uploading'); this.uploads += 1; }
        else if (this.root.dataset.state === 'uploading') this.setState('generating');
        if (e.type === 'progress' && e.total) {
          el['gen-progress'].max = e.total;
          el['gen-progress'].value = e.done;
        }
        const line = describeEvent(e, 'generating');
        if (line) this.setStatus(line);
      };
      const api = this.config.api[restyle ? 'restyle' : 'inpaint'];
      const [png, , record] = await call(api, payload, onEvent);
      const url = fileUrl(png);
      el.before.src = URL.createObjectURL(file);
      el.after.src = url;
      el['result-download'].href = url;
      el['result-download'].download = `${(name || 'image').replace(/\.[^.]+$/, '')}-edited.png`;
      el['gen-progress'].max = 1;
      el['gen-progress'].value = 1;
      const faces = record.faces ? `face${record.faces.length > 1 ? 's' : ''} ${record.faces.map((f) => f.face).join(', ')} · ` : '';
      el['result-info'].textContent = `Seed ${record.seed} · ${faces}${record.regions.join(', ') || (restyle ? 'whole image' : 'painted mask')}`
        + ` · strength ${record.strength} · ${record.steps} steps. Drag the slider to compare.`;
      this.setState('done');
      this.setStatus(record.faces ? 'Done: outside the chosen faces\' masks every pixel is the original.'
        : 'Done: outside the mask every pixel is the original.');
    } catch (err) {
      el.result.hidden = true;
      this.fail(`The server could not regenerate: ${err.message}`);
    }
  }

  /** Load an image by URL (same origin), e.g. a generated image from the gallery. */
  async loadUrl(url, name = 'generated.png') {
    const blob = await (await fetch(url)).blob();
    await this.load(new File([blob], name, { type: blob.type || 'image/png' }));
  }
}

/** Mount into `element` (the gr.HTML wrapper); safe to call again on re-render. */
export function mount(element) {
  const root = element.querySelector('.fs-edit') || element;
  if (root.dataset.mounted) return root.view;
  root.dataset.mounted = '1';
  const view = new EditView(root, JSON.parse(root.dataset.config));
  root.view = view;
  view.init();
  return view;
}

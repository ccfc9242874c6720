// The Edit view: a photo is parsed in this browser, the user picks regions (and paints), sets grow /
// feather and a prompt; only after an explicit confirmation are image + mask uploaded, in one request,
// to the server's `inpaint` endpoint (or the image alone to `restyle`). Root data-state:
// idle | parsing | ready | confirming | uploading | generating | done | error. The call is a named payload
// ({image, mask, prompt, grow, …}); its fields, defaults and limits come from the server's page config.
import { call, describeEvent, fileUrl } from './api-client.js';
import { loadFirstBackend } from './browser-parser.js';
import { ImageInputError, readImage } from './image-input.js';
import { combineMask, coverage, growMask, stamp } from './mask.js';
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
    <fieldset><legend>Regions</legend><ul class="fs-regions" data-role="regions"></ul></fieldset>
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
    this.painted = new Uint8Array(width * height);
    this.erased = new Uint8Array(width * height);
    this.el.canvas.width = width;
    this.el.canvas.height = height;
    this.el.result.hidden = true;
    this.setState('parsing');
    this.setStatus('Parsing in this browser (nothing is uploaded)…');
    try {
      this.parse = await this.parseInBrowser();
    } catch (err) {
      this.parse = new Uint8Array(width * height); // no regions: the brush still works
      this.fail(`This browser could not parse the image (${err.message}). Paint the regions with the brush.`);
    }
    this.showRegions();
    this.el.side.hidden = false;
    this.setState('ready');
    this.setStatus('Pick regions and/or paint, write a prompt, then Regenerate.');
    this.render();
  }

  async parseInBrowser() {
    if (this.config.missing) throw new Error(this.config.missing);
    const wasm = this.config.dtypes.includes('q8') ? 'q8' : this.config.dtypes[0];
    if (!this.parser) this.parser = (await loadFirstBackend(this.config, 'auto', wasm)).parser;
    const { rgba, width, height } = this.image;
    return (await this.parser.parse(rgba, width, height)).labels;
  }

  showRegions() {
    const counts = new Uint32Array(this.labels.length);
    for (const c of this.parse) counts[c]++;
    const total = this.parse.length;
    this.selected = this.labels.map(() => false);
    this.el.regions.innerHTML = '';
    this.labels.forEach((label, id) => {
      if (!counts[id] || id === 0) return;
      const li = document.createElement('li');
      const [r, g, b] = label.color;
      li.innerHTML = `<label><input type="checkbox" data-class="${label.name}"><span class="fs-swatch" `
        + `style="background: rgb(${r},${g},${b})"></span>${label.title} <small>${(100 * counts[id] / total).toFixed(1)} %</small></label>`;
      li.querySelector('input').addEventListener('change', (e) => { this.selected[id] = e.target.checked; this.render(); });
      this.el.regions.append(li);
    });
  }

  brush(event) {
    const kind = this.root.querySelector('input[name="fs-brush"]:checked').value;
    if (kind === 'off' || !this.image) return false;
    const rect = this.el.canvas.getBoundingClientRect();
    const scale = this.image.width / rect.width;
    const x = (event.clientX - rect.left) * scale, y = (event.clientY - rect.top) * scale;
    const radius = Number(this.el['brush-size'].value) * scale / 2;
    const [layer, other] = kind === 'paint' ? [this.painted, this.erased] : [this.erased, this.painted];
    stamp(layer, other, this.image.width, this.image.height, x, y, radius);
    this.render();
    return true;
  }

  currentMask() {
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
    this.coverage = grown ? coverage(grown) : 1;
    this.el.coverage.textContent = restyle ? 'The whole image is restyled.'
      : `The mask covers ${(100 * this.coverage).toFixed(1)} % of the image (after grow; feather softens its edge on the server).`;
    this.updateSend();
  }

  updateSend() {
    const ready = this.image && this.el.prompt.value.trim()
      && (this.mode === 'restyle' || (this.coverage > 0 && this.coverage < this.config.maxCoverage));
    this.el.send.disabled = !ready || Boolean(this.config.generationUnavailable);
  }

  askConfirm() {
    const what = this.mode === 'restyle' ? 'this image' : 'this image and its mask';
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
    if (!restyle) {
      const mask = this.currentMask().map((v) => v * 255);
      Object.assign(payload, {
        mask: new File([await encodeGrayPng(mask, width, height)], 'mask.png', { type: 'image/png' }),
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
      el['result-info'].textContent = `Seed ${record.seed} · ${record.regions.join(', ') || (restyle ? 'whole image' : 'painted mask')}`
        + ` · strength ${record.strength} · ${record.steps} steps. Drag the slider to compare.`;
      this.setState('done');
      this.setStatus('Done: outside the mask every pixel is the original.');
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

// The recolour controls of the Parse view: a region group (from labels.json "groups", defined once in
// face_studio/labels.py), a colour, a strength, and a PNG download of what is shown. The photo view and live
// mode both draw through `apply()`; the feathered mask is cached per label map and group.
import { save } from './downloads.js';
import { featherMask, featherRadius, parseHexColour, recolour } from './recolour.js';

const DEFAULT_COLOUR = '#b5305a';
const DEFAULT_STRENGTH = 0.8;

export class RecolourPanel {
  /**
   * `onChange()` runs after any control changes; `source()` gives what a download saves:
   * {canvas, name} (the canvas on screen and a file-name stem), or null when nothing is shown.
   */
  constructor(container, { onChange = () => {}, source = () => null, onError = () => {} } = {}) {
    this.onChange = onChange;
    this.source = source;
    this.onError = onError;
    this.groups = [];
    this.group = null; // the chosen group's name, null = off
    this.cache = { labels: null, key: '', mask: null };
    container.innerHTML = `
      <div class="fs-recolour" data-role="recolour-panel">
        <span class="fs-recolour-title">Recolour</span>
        <span class="fs-recolour-groups" data-role="recolour-groups" role="group" aria-label="Region"></span>
        <label>Colour <input type="color" value="${DEFAULT_COLOUR}" data-role="recolour-colour"></label>
        <label>Strength <input type="range" min="0" max="1" step="0.05" value="${DEFAULT_STRENGTH}"
          data-role="recolour-strength"></label>
        <button type="button" class="fs-button" data-role="recolour-download" disabled>Download PNG</button>
      </div>`;
    this.el = Object.fromEntries([...container.querySelectorAll('[data-role]')].map((e) => [e.dataset.role, e]));
    this.el['recolour-colour'].addEventListener('input', () => this.onChange());
    this.el['recolour-strength'].addEventListener('input', () => this.onChange());
    this.el['recolour-download'].addEventListener('click', () => this.download());
  }

  /** The groups from labels.json: [{name, title, ids}]. */
  setGroups(groups = []) {
    this.groups = groups;
    const buttons = [{ name: '', title: 'Off' }, ...groups].map(({ name, title }) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'fs-button fs-chip';
      button.dataset.group = name;
      button.textContent = title;
      button.setAttribute('aria-pressed', String(name === (this.group ?? '')));
      button.addEventListener('click', () => this.choose(name || null));
      return button;
    });
    this.el['recolour-groups'].replaceChildren(...buttons);
  }

  choose(name) {
    this.group = name;
    for (const button of this.el['recolour-groups'].children) {
      button.setAttribute('aria-pressed', String(button.dataset.group === (name ?? '')));
    }
    this.el['recolour-download'].disabled = !name;
    this.onChange();
  }

  /** Everything that changes the picture, as one string (live mode redraws when it changes). */
  stateKey() {
    return `${this.group}|${this.el['recolour-colour'].value}|${this.el['recolour-strength'].value}`;
  }

  get active() {
    return this.group !== null;
  }

  /** The recoloured copy of `rgba` (RGBA bytes) for the label map, or null when recolour is off. */
  apply(rgba, labels, width, height, out) {
    const group = this.groups.find((g) => g.name === this.group);
    if (!group) return null;
    const key = `${group.name}/${width}x${height}`;
    if (this.cache.labels !== labels || this.cache.key !== key) {
      this.cache = { labels, key, mask: featherMask(labels, width, height, group.ids, featherRadius(width, height)) };
    }
    const colour = parseHexColour(this.el['recolour-colour'].value);
    const strength = Number(this.el['recolour-strength'].value);
    return recolour(rgba, this.cache.mask, colour, strength, out);
  }

  async download() {
    const shown = this.source();
    if (!shown || !this.group) return;
    try {
      const blob = await new Promise((resolve, reject) => shown.canvas.toBlob(
        (b) => (b ? resolve(b) : reject(new Error('the canvas could not be encoded'))), 'image/png'));
      save(blob, `${shown.name}.recolour-${this.group}.png`);
    } catch (err) {
      this.onError(`The download failed: ${err.message}`);
    }
  }
}

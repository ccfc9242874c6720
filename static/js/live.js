// Live camera mode of the Parse view: the camera's video, each frame parsed in a worker (the live parser when
// the server has one, else the main parser, with a note that says why that is slow), each parsed frame shown
// with its own label map over it, a frame-rate readout, Stop and Snapshot. Nothing leaves the page:
// frames go to the worker as pixels, never to the server.
//
// Back-pressure: one frame in flight at most. When the worker answers, the next parse takes the newest frame;
// every frame that played meanwhile is dropped, never queued.
//
// Face crops (issue 15): when the worker has the face detector, it searches the frame for faces (the
// whole-frame letterbox only: one detector run; again once the last run is CROP_MAX_AGE_MS old) and the live
// parser parses each face's crop (up to LIVE_MAX_FACES, framed like the parser's training data), whose labels
// are pasted back into the frame: the overlay follows the face, at the parser's full resolution on it. No
// face: the whole frame, as before. A crop stays put through the detector's few-pixel jitter (CROP_HOLD).
// The "Face crop" box turns it off.
//
// The box carries data-live-state (off | starting | loading | running | stopped | error), data-frames (frames
// parsed since Start), data-model-id and data-input-size (what the worker reported), and for the last frame
// shown data-faces (faces parsed on their crops; 0: the whole frame), data-face-boxes / data-face-crops (JSON
// [[x0, y0, x1, y1], …], frame pixels) and data-labels-box / data-labels-centre (the labelled pixels' bounding
// box and centroid, "" when none), for people reading the DOM, the tests and bench/live.py.
import { DEVICE_NAMES, loadFirstBackend } from './browser-parser.js';

const READOUT_WINDOW = 20; // frames the FPS and ms figures average over
const READOUT_EVERY_MS = 250;
// Flicker filter (labels-graph live parsers): a pixel keeps last frame's label unless the new winner's logit
// leads it by HYSTERESIS × the frame's mean top-1 − top-2 logit gap (a relative margin: the same on any model's
// logit scale), and only where its colour changed by at most HYSTERESIS_STILL grey levels since the last frame.
// Camera noise on a near-tie no longer flips a still pixel back and forth; a clear change, and any pixel that
// moved, switches in the frame it appears (no lag, no ghost of an old label). Chosen with bench/flicker.py.
export const HYSTERESIS = 0.3;
export const HYSTERESIS_STILL = 16; // grey levels, any channel: ~4σ of two frames' sensor noise at σ 3
// The face detector runs again when the picture moved since its last run — more than DETECT_MOTION of the
// frame's pixels changed colour by more than HYSTERESIS_STILL grey levels (camera noise at σ 3 changes 0.04 %)
// — or once that run is CROP_MAX_AGE_MS old; the frames between reuse its faces and crops. On every frame the
// detector took 13–20 % of a frame (bench/live.py), at the 15 % budget on its own; a still face now
// pays it once a second, and a moving face is found again on the frame it moved (the crop, 2.4 × the face,
// has 70 % of the face to spare on each side, so the face is still inside it then).
export const CROP_MAX_AGE_MS = 1000;
export const DETECT_MOTION = 0.02;
// Faces a live frame parses at most (each is one parser run; the highest-scoring first).
export const LIVE_MAX_FACES = 2;
// A face's crop is kept while the face moves or grows by at most this share of the crop's side.
export const CROP_HOLD = 0.04;
// Live labels are made at most at the parser's input size (a face crop: 256² rather than its ~450² frame
// pixels) and scaled to the frame by nearest neighbour: the graph's upsample + argmax costs in WASM with its
// output size (bench/live.py --labels-max). `labelsMax` option: null = the parser's input size, 0 = full size.

const TEMPLATE = `
<div class="fs-live" data-role="live-box" data-live-state="off" hidden>
  <p class="fs-live-note" data-role="live-note" hidden></p>
  <div class="fs-live-stage"><canvas data-role="live-canvas"></canvas></div>
  <video data-role="live-video" autoplay playsinline muted hidden></video>
  <div class="fs-live-bar">
    <span class="fs-live-readout" data-role="live-readout" role="status">Starting the camera…</span>
    <label class="fs-live-faces" title="Find faces and parse each on its own crop (off: the whole frame)">
      <input type="checkbox" data-role="live-faces" checked> Face crop</label>
    <button type="button" class="fs-button" data-role="live-snapshot" disabled>Snapshot</button>
    <button type="button" class="fs-button" data-role="live-stop">Stop</button>
  </div>
</div>`;

/** Blend each labelled pixel of `rgba` (in place, `width` wide) inside `region` [x0, y0, x1, y1] toward its
 *  label's colour by `opacity`, as drawing the translucent colour layer over the frame would; background (0)
 *  stays as it is. */
export function blendLabels(rgba, labels, palette, opacity, width, [x0, y0, x1, y1]) {
  const keep = 1 - opacity;
  const mix = palette.map((c) => (c ? c.map((v) => v * opacity) : null));
  for (let y = y0; y < y1; y++) {
    for (let i = y * width + x0, p = 4 * i, end = y * width + x1; i < end; i++, p += 4) {
      const c = labels[i];
      if (c === 0 || !mix[c]) continue;
      const m = mix[c];
      rgba[p] = rgba[p] * keep + m[0];
      rgba[p + 1] = rgba[p + 1] * keep + m[1];
      rgba[p + 2] = rgba[p + 2] * keep + m[2];
    }
  }
}

/** Where a live result can have labels: the union of its faces' crops (outside every crop the worker leaves
 *  background), clipped to the frame; the whole frame when it was parsed whole. [x0, y0, x1, y1]. */
export function labelledRegion(faces, width, height) {
  if (!faces?.length) return [0, 0, width, height];
  const crops = faces.map((f) => f.crop);
  const clip = (v, hi) => Math.min(hi, Math.max(0, v));
  return [clip(Math.min(...crops.map((c) => c[0])), width), clip(Math.min(...crops.map((c) => c[1])), height),
    clip(Math.max(...crops.map((c) => c[2])), width), clip(Math.max(...crops.map((c) => c[3])), height)];
}

export class LiveMode {
  /**
   * `config`: the page config (its `live` part, if any, names the live parser). Callbacks:
   * `labels()` the label table, `opacity()` the overlay opacity, `backend()` the user's backend choice,
   * `dtype()` the WASM precision chosen for photos, `recolour` a RecolourPanel, `onSnapshot(file)` takes a
   * frame to the photo view, `onError(message)`.
   */
  constructor(container, config, hooks) {
    this.config = config;
    this.hooks = hooks;
    // bench/live.py sets numThreads and hysteresis (0: off) before Start; `hold`, `cropMaxAgeMs`, `detectMotion`
    // (0: re-detect on age alone) and `labelsMax` any time.
    this.options = { numThreads: navigator.hardwareConcurrency || 1, hysteresis: HYSTERESIS, hold: CROP_HOLD,
      cropMaxAgeMs: CROP_MAX_AGE_MS, detectMotion: DETECT_MOTION, labelsMax: null };
    container.innerHTML = TEMPLATE;
    this.el = Object.fromEntries([...container.querySelectorAll('[data-role]')].map((e) => [e.dataset.role, e]));
    this.box = this.el['live-box'];
    this.canvas = this.el['live-canvas'];
    this.video = this.el['live-video'];
    this.parser = null;
    this.parserKey = null;
    this.stream = null;
    this.running = false;
    this.session = 0; // bumped by Stop: a parse answered after it belongs to no session
    this.el['live-stop'].addEventListener('click', () => this.stop());
    this.el['live-snapshot'].addEventListener('click', () => this.snapshot());
  }

  /** The live parser's config for BrowserParser: the main config with the live model's URL, id, size, dtypes. */
  get parserConfig() {
    return this.config.live ? { ...this.config, ...this.config.live } : this.config;
  }

  setState(state) {
    this.box.dataset.liveState = state;
  }

  setReadout(text) {
    this.el['live-readout'].textContent = text;
  }

  // 1. Start: camera, then the model (the video shows while the model loads) -------------------------
  async start() {
    if (this.running) return;
    const session = ++this.session;
    this.box.hidden = false;
    this.setState('starting');
    this.setReadout('Starting the camera…');
    this.el['live-note'].textContent = this.config.live ? '' : this.config.liveMissing;
    this.el['live-note'].hidden = Boolean(this.config.live);
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: 'user', width: { ideal: 640 }, height: { ideal: 480 } }, audio: false,
      });
      if (session !== this.session) { // Stop was pressed while the camera started
        stream.getTracks().forEach((track) => track.stop());
        return;
      }
      this.stream = stream;
      this.video.srcObject = stream;
      await this.video.play();
    } catch (err) {
      if (session === this.session) {
        this.fail(`The camera is not available (${err.message || err.name}): upload or paste a photo instead.`);
      }
      return;
    }
    if (session !== this.session) return; // stopped meanwhile
    this.running = true;
    this.lastResult = null;
    this.recent = []; // [{done, ms}] of the last READOUT_WINDOW frames
    // Sums since Start, for bench/live.py: frames, round-trip ms, the worker's stages, and flicker (pixels
    // whose label changed since the frame before, over the pixels compared).
    // detect / crop / paste: the face stages (0 on frames parsed whole); faced: frames parsed on face crops.
    this.totals = { frames: 0, ms: 0, preprocess: 0, model: 0, postprocess: 0, detect: 0, 'detector model': 0,
      crop: 0, paste: 0, faced: 0, changed: 0, compared: 0 };
    this.box.dataset.frames = '0';
    this.box.dataset.flicker = '0';
    this.el['live-snapshot'].disabled = false;
    this.drawLoop();
    try {
      this.setState('loading');
      await this.ensureParser();
    } catch (err) {
      if (session === this.session) {
        this.fail(`Live mode needs this browser to run the model, and it could not: ${err.message}`);
      }
      return;
    }
    if (session !== this.session) return;
    this.setState('running');
    this.box.dataset.modelId = this.parser.info.modelId;
    this.box.dataset.inputSize = this.parser.info.inputSize;
    this.box.dataset.device = this.parser.info.device;
    const detector = this.parser.info.detector;
    this.el['live-faces'].disabled = !detector || Boolean(detector.error);
    if (this.el['live-faces'].disabled) this.el['live-faces'].checked = false;
    this.parseLoop(session);
  }

  async ensureParser() {
    const choice = this.hooks.backend() === 'server' ? 'auto' : this.hooks.backend(); // frames never go out
    const config = this.parserConfig;
    const wanted = this.hooks.dtype();
    const dtype = config.dtypes.includes(wanted) ? wanted : config.dtypes.includes('q8') ? 'q8' : config.dtypes[0];
    const key = `${choice}/${dtype}/${this.options.numThreads}/${this.options.hysteresis}`;
    if (this.parserKey === key) return this.loading; // loaded, or loading (a quick Stop → Start)
    this.parser?.dispose();
    this.parser = null;
    this.parserKey = key;
    const { numThreads, hysteresis } = this.options;
    const still = HYSTERESIS_STILL;
    this.loading = loadFirstBackend(config, choice, dtype, {
      onStep: (name) => this.setReadout(`Loading the ${this.config.live ? 'live' : 'main'} parser for ${name}…`),
      callbacks: (name) => ({ onStatus: (phase) => this.setReadout(`${name}: ${phase}…`) }),
      numThreads,
      hysteresis,
      still,
    }).then(({ parser }) => {
      if (this.parserKey === key) this.parser = parser; else parser.dispose(); // replaced while it loaded
    }, (err) => {
      if (this.parserKey === key) this.parserKey = null;
      throw err;
    });
    return this.loading;
  }

  // 2. Parse loop: one frame in flight, always the newest -----------------------------------------------
  grabFrame() {
    const { videoWidth: width, videoHeight: height } = this.video;
    if (!this.grab || this.grab.width !== width || this.grab.height !== height) {
      this.grab = new OffscreenCanvas(width, height);
      this.grabContext = this.grab.getContext('2d', { willReadFrequently: true });
    }
    this.grabContext.drawImage(this.video, 0, 0);
    const image = this.grabContext.getImageData(0, 0, width, height);
    return { image, rgba: image.data, width, height };
  }

  async parseLoop(session) {
    while (this.running && session === this.session) {
      if (this.video.readyState < 2 || !this.video.videoWidth) {
        await new Promise((resolve) => requestAnimationFrame(resolve));
        continue;
      }
      const frame = this.grabFrame();
      const faceOptions = this.faceOptions(); // as asked for this frame (the box may change while it parses)
      const t0 = performance.now();
      let out;
      try {
        out = await this.parser.parse(frame.rgba, frame.width, frame.height, faceOptions);
      } catch (err) {
        if (session === this.session) this.fail(`Parsing a frame failed: ${err.message}`);
        return;
      }
      if (!this.running || session !== this.session) return; // answered after Stop: not shown, not counted
      const done = performance.now();
      this.totals.frames++;
      this.totals.ms += done - t0;
      this.box.dataset.frames = String(this.totals.frames);
      this.recent.push({ done, ms: done - t0 });
      for (const stage of ['preprocess', 'model', 'postprocess', 'detect', 'detector model', 'crop', 'paste']) {
        this.totals[stage] += out.timings[stage] || 0;
      }
      if (out.faces.length) this.totals.faced++;
      if (this.recent.length > READOUT_WINDOW) this.recent.shift();
      this.countFlicker(this.lastResult, out);
      this.box.dataset.flicker = this.flicker().toFixed(5);
      this.lastResult = { ...out, picture: frame.image, facesMode: faceOptions.faces };
      this.describe(this.lastResult);
    }
  }

  /** The worker's options for the next frame: face crops unless the box is off (or there's no detector), and
   *  the labels' size. */
  faceOptions() {
    const labelsMax = this.options.labelsMax ?? this.parser.info.inputSize;
    if (!this.el['live-faces'].checked) return { faces: 'off', labelsMax };
    const { hold, cropMaxAgeMs: maxAgeMs, detectMotion: motion } = this.options;
    return { faces: 'auto', track: { maxAgeMs, motion, tiles: false, maxFaces: LIVE_MAX_FACES, hold }, labelsMax };
  }

  /** The last result on the box: faces, their boxes and crops, where the labelled pixels are. */
  describe({ faces, labels, width, height }) {
    const d = this.box.dataset;
    d.faces = String(faces.length);
    d.faceBoxes = JSON.stringify(faces.map((f) => f.box));
    d.faceCrops = JSON.stringify(faces.map((f) => f.crop));
    let n = 0, sx = 0, sy = 0, x0 = width, y0 = height, x1 = -1, y1 = -1;
    const [rx0, ry0, rx1, ry1] = labelledRegion(faces, width, height);
    for (let y = ry0; y < ry1; y++) {
      for (let x = rx0, i = y * width + rx0; x < rx1; x++, i++) {
        if (!labels[i]) continue;
        n++; sx += x; sy += y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    d.labelsBox = n ? JSON.stringify([x0, y0, x1 + 1, y1 + 1]) : '';
    d.labelsCentre = n ? JSON.stringify([+(sx / n).toFixed(1), +(sy / n).toFixed(1)]) : '';
  }

  /** Add the pixels whose label changed between two consecutive results of one size to the totals. */
  countFlicker(before, after) {
    if (!before || before.width !== after.width || before.height !== after.height) return;
    const a = before.labels, b = after.labels;
    let changed = 0;
    // Four labels at a time where they all agree (most of a frame); byte by byte where they do not.
    const words = a.length >> 2, a4 = new Uint32Array(a.buffer, a.byteOffset, words);
    const b4 = new Uint32Array(b.buffer, b.byteOffset, words);
    for (let w = 0; w < words; w++) {
      if (a4[w] === b4[w]) continue;
      for (let i = 4 * w; i < 4 * w + 4; i++) if (a[i] !== b[i]) changed++;
    }
    for (let i = 4 * words; i < a.length; i++) if (a[i] !== b[i]) changed++;
    this.totals.changed += changed;
    this.totals.compared += a.length;
  }

  /** Flicker since Start: the share of pixels whose label changed between consecutive frames (0…1). */
  flicker() {
    return this.totals.compared ? this.totals.changed / this.totals.compared : 0;
  }

  /** {fps, ms}: frames parsed per second and the mean time a frame took, over the last few frames. */
  rate() {
    const { recent } = this;
    if (recent.length < 2) return null;
    const span = recent[recent.length - 1].done - recent[0].done;
    const ms = recent.reduce((sum, r) => sum + r.ms, 0) / recent.length;
    return { fps: span > 0 ? ((recent.length - 1) * 1000) / span : 0, ms };
  }

  // 3. Display: each parsed frame with its own label map ---------------------------------------------
  // The canvas shows the frame that was parsed, with its labels, once its parse is back: picture and overlay
  // always match (no label map from an older frame over a newer picture), at the parse rate. Drawing the
  // camera's video at its own rate instead (30 FPS: a 640×480 drawImage + the overlay each time) took a
  // quarter of the parser's speed on a 2-core machine (bench/live.py: 15.0 vs 11.1 FPS without and with it).
  // Until the first frame is parsed (the model loading) the canvas shows the video as it plays.
  drawLoop() {
    // Opaque: the software compositor (no GPU) copies it instead of blending it — 12.3–13.5 → 14.3–15.3 FPS.
    const ctx = this.canvas.getContext('2d', { alpha: false });
    let lastReadout = 0;
    let drawn = '';
    const draw = (now) => {
      if (!this.running) return;
      const result = this.lastResult;
      const { width, height } = result || { width: this.video.videoWidth, height: this.video.videoHeight };
      // Redraw only when something changed (a new parsed frame, a setting; before the first: a new video
      // frame): on a 2-core laptop every idle millisecond goes to the parser.
      const key = [result ? this.totals.frames : `video ${this.video.currentTime}`, width, height,
        this.hooks.opacity(), this.hooks.recolour.stateKey()].join('|');
      if (width && height && key !== drawn) {
        drawn = key;
        if (this.canvas.width !== width || this.canvas.height !== height) {
          this.canvas.width = width;
          this.canvas.height = height;
        }
        if (result) this.paintLabels(ctx, result);
        else ctx.drawImage(this.video, 0, 0);
      }
      if (now - lastReadout > READOUT_EVERY_MS) {
        lastReadout = now;
        this.showRate();
      }
      this.raf = requestAnimationFrame(draw);
    };
    this.raf = requestAnimationFrame(draw);
  }

  /** The parsed frame with its labels: recoloured, or with the label colours blended over it, in one
   *  putImageData (a buffer reused frame to frame: no canvas or image allocated per frame). */
  paintLabels(ctx, result) {
    const { width, height, labels, picture } = result;
    if (this.painted?.width !== width || this.painted?.height !== height) this.painted = new ImageData(width, height);
    const out = this.painted.data;
    out.set(picture.data);
    if (this.hooks.recolour.active) this.hooks.recolour.apply(picture.data, labels, width, height, out);
    else {
      blendLabels(out, labels, this.hooks.labels().map((l) => l.color), this.hooks.opacity(), width,
        labelledRegion(result.faces, width, height));
    }
    ctx.putImageData(this.painted, 0, 0);
  }

  showRate() {
    const rate = this.rate();
    if (!rate || !this.parser?.info) return;
    const { device, dtype, numThreads, inputSize } = this.parser.info;
    const threads = device === 'wasm' ? ` · ${numThreads} thread${numThreads > 1 ? 's' : ''}` : '';
    this.box.dataset.fps = rate.fps.toFixed(2);
    this.box.dataset.ms = rate.ms.toFixed(1);
    this.setReadout(`${rate.fps.toFixed(1)} FPS · ${Math.round(rate.ms)} ms a frame — `
      + `${this.config.live ? 'live' : 'main'} parser, ${inputSize} px, ${DEVICE_NAMES[device]} ${dtype}${threads}`
      + ` · ${this.facesText()}`);
  }

  /** The readout's end: how the last frame was parsed (tools read the start; keep this part last). */
  facesText() {
    const result = this.lastResult;
    if (this.el['live-faces'].disabled) return 'no face detector: whole frame';
    if (!result || result.facesMode === 'off') return 'face crop off: whole frame';
    const n = result.faces.length;
    if (!n) return 'no face: whole frame';
    const of = result.found > n ? ` of ${result.found}` : '';
    return `${n}${of} face${Math.max(n, result.found || 0) > 1 ? 's' : ''}`;
  }

  // 4. Stop and Snapshot -------------------------------------------------------------------------------
  /** Stop the camera's tracks, the parse loop and the drawing; the loaded model stays for the next Start. */
  stop(reason = null) {
    this.session++;
    this.running = false;
    cancelAnimationFrame(this.raf);
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.video.srcObject = null;
    this.el['live-snapshot'].disabled = true;
    if (!reason) {
      this.setState('stopped');
      this.setReadout(`Stopped · ${this.totals?.frames ?? 0} frames parsed.`);
    }
  }

  fail(message) {
    this.stop(message);
    this.setState('error');
    this.setReadout('Live mode stopped.');
    this.hooks.onError(message);
  }

  /** The current frame, full size, to the photo view (parsed there by the main parser at full quality). */
  async snapshot() {
    if (!this.running || !this.video.videoWidth) return;
    const { videoWidth: width, videoHeight: height } = this.video;
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext('2d').drawImage(this.video, 0, 0);
    const blob = await canvas.convertToBlob({ type: 'image/png' });
    this.stop();
    this.box.hidden = true;
    await this.hooks.onSnapshot(new File([blob], 'camera.png', { type: 'image/png' }));
  }
}

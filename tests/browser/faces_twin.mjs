// Run static/js/faces.js on what tests/browser/test_faces_twin.py recorded from face_studio/faces.
// usage: node faces_twin.mjs CASE_DIR   (reads CASE_DIR/case.json and the raw files it names; writes
// CASE_DIR/js.json and, per mode, CASE_DIR/js-<mode>.labels / .owner, and each crop as js-crop-<k>.rgba)
import fs from 'node:fs';
import path from 'node:path';
import {
  cropBox, cropRgba, decode, detectFaces, detectorOf, paste, selectFaces, weightedNms,
} from '../../static/js/faces.js';

const dir = process.argv[2];
const read = (name) => fs.readFileSync(path.join(dir, name));
const floats = (name) => { const b = read(name); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
const c = JSON.parse(read('case.json'));
const spec = JSON.parse(fs.readFileSync(c.spec));
const detector = detectorOf(spec);
const rgba = new Uint8Array(read('image.rgba'));
const { width, height } = c;

/** The same integer formula as the Python side: a stand-in for the parser's labels of crop k (side × side). */
function cropLabels(side, k) {
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) out[y * side + x] = (x + 2 * y + k) % 5 === 0 ? 0 : (Math.floor((3 * x + 5 * y) / 7) + k) % 19;
  }
  return out;
}

// 1. The detector's inputs (letterbox of the image and of each tile) and the whole pipeline on recorded outputs.
const inputDiff = [];
let runIndex = 0;
const run = async (pixels) => {
  const i = runIndex++;
  const expected = floats(`input-${i}.f32`);
  let diff = expected.length === pixels.length ? 0 : Infinity;
  for (let j = 0; j < pixels.length && diff !== Infinity; j++) diff = Math.max(diff, Math.abs(pixels[j] - expected[j]));
  inputDiff.push(diff);
  return { regressors: floats(`reg-${i}.f32`), classificators: floats(`cls-${i}.f32`) };
};
const { faces } = await detectFaces(rgba, width, height, spec, run);

// 2. Decode + NMS alone on the first run's outputs at a low threshold (many overlapping candidates).
const low = decode(floats('reg-0.f32'), floats('cls-0.f32'), detector, c.lowThreshold);
const lowNms = weightedNms(low, spec.nmsIou);

// 3. Modes, crops, crop pixels and the pasted maps.
const modes = {};
for (const mode of ['auto', 'largest', 'off']) {
  const chosen = selectFaces(faces, mode, spec.maxFaces);
  const crops = chosen.faces.map((f) => cropBox(f.box, width, height, spec));
  const labels = new Uint8Array(width * height), owner = new Uint8Array(width * height);
  const claimed = crops.map((crop, k) => paste(labels, owner, width, height, cropLabels(crop[2] - crop[0], k + 1), crop, k + 1));
  if (mode === 'auto') {
    crops.forEach((crop, k) => fs.writeFileSync(path.join(dir, `js-crop-${k + 1}.rgba`), cropRgba(rgba, width, height, crop)));
  }
  fs.writeFileSync(path.join(dir, `js-${mode}.labels`), labels);
  fs.writeFileSync(path.join(dir, `js-${mode}.owner`), owner);
  modes[mode] = { boxes: chosen.faces.map((f) => f.box), note: chosen.note, crops, claimed };
}
fs.writeFileSync(path.join(dir, 'js.json'), JSON.stringify({
  runs: runIndex, inputDiff, faces,
  low: low.map((d) => ({ box: d.box, score: d.score, keypoints: d.keypoints })),
  lowNms: lowNms.map((d) => ({ box: d.box, score: d.score, keypoints: d.keypoints })),
  modes,
}));

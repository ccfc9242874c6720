// Run static/js/segment.js on raw files for tests/browser/test_segment_twin.py.
// usage: node segment_twin.mjs RGBA_FILE WIDTH HEIGHT LOGITS_FILE C h w OUT_PIXELS OUT_LABELS
import fs from 'node:fs';
import { logitsToLabels, toPixelValues } from '../../static/js/segment.js';

const [rgbaFile, width, height, logitsFile, c, h, w, outPixels, outLabels] = process.argv.slice(2);
const rgba = new Uint8Array(fs.readFileSync(rgbaFile));
fs.writeFileSync(outPixels, toPixelValues(rgba, Number(width), Number(height)));
const buf = fs.readFileSync(logitsFile);
const logits = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const { labels } = logitsToLabels(logits, Number(c), Number(h), Number(w), Number(height), Number(width));
fs.writeFileSync(outLabels, labels);

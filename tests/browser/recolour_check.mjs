// Run static/js/recolour.js on raw files for tests/browser/test_recolour.py.
// usage: node recolour_check.mjs RGBA_FILE LABELS_FILE WIDTH HEIGHT IDS(comma) #RRGGBB STRENGTH RADIUS OUT_RGBA OUT_WEIGHTS
//        [LIFT: auto | true | false]
import fs from 'node:fs';
import { featherMask, parseHexColour, recolour } from '../../static/js/recolour.js';

const [rgbaFile, labelsFile, width, height, ids, colour, strength, radius, outRgba, outWeights, lift = 'auto']
  = process.argv.slice(2);
const rgba = new Uint8ClampedArray(fs.readFileSync(rgbaFile));
const labels = new Uint8Array(fs.readFileSync(labelsFile));
const mask = featherMask(labels, Number(width), Number(height), ids.split(',').map(Number), Number(radius));
const options = { lift: lift === 'auto' ? 'auto' : lift === 'true' };
fs.writeFileSync(outRgba, recolour(rgba, mask, parseHexColour(colour), Number(strength), undefined, options));
fs.writeFileSync(outWeights, mask.weights);

// Instant recolour of a face region, in the page, no server: keep each pixel's Oklab lightness L (the texture:
// strands of hair, lip creases), move its colour (a, b: hue and chroma) so that the region's mean colour
// becomes the chosen one, and blend by a feathered weight. Pure functions over typed arrays (no DOM), so
// Node runs them too (tests/browser/recolour_check.mjs).
//
// Lift: hair dye that only changes hue never turns black hair blonde. When the chosen colour is much lighter
// than the region (Oklab L higher by more than LIFT_THRESHOLD), or when asked (`lift: true`), each pixel's L
// is shifted by (target L − the region's mean L) too: the region's mean reaches the target's lightness while
// every pixel keeps its offset from that mean (the strands' lightness texture).
//
// Bit-exact outside: a pixel whose feathered weight is 0 (further than `radius` px, Chebyshev, from every
// pixel of the chosen classes) is copied unchanged.

// Oklab matrices (Björn Ottosson, https://bottosson.github.io/posts/oklab/), linear sRGB in [0, 1].
function linearToOklab(r, g, b, out) {
  const l = Math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  const m = Math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  const s = Math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  out[0] = 0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s;
  out[1] = 1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s;
  out[2] = 0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s;
}

function oklabToLinear(L, a, b, out) {
  const l = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3;
  const m = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3;
  const s = (L - 0.0894841775 * a - 1.2914855480 * b) ** 3;
  out[0] = 4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s;
  out[1] = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s;
  out[2] = -0.0041960863 * l - 0.7034186147 * m + 1.7076373940 * s;
}

const DECODE = Float64Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

function encode(x) {
  const c = x <= 0.0031308 ? 12.92 * x : 1.055 * x ** (1 / 2.4) - 0.055;
  return c * 255;
}

const GAMUT_EPS = 1e-6;
const GAMUT_STEPS = 8; // bisection steps on chroma: 1/256 of the way, below one 8-bit step

function inGamut(rgb) {
  return rgb[0] >= -GAMUT_EPS && rgb[0] <= 1 + GAMUT_EPS && rgb[1] >= -GAMUT_EPS && rgb[1] <= 1 + GAMUT_EPS
    && rgb[2] >= -GAMUT_EPS && rgb[2] <= 1 + GAMUT_EPS;
}

/** Linear RGB of (L, a, b), with chroma reduced (hue and L kept) until it is inside sRGB. */
function oklabToLinearInGamut(L, a, b, out) {
  oklabToLinear(L, a, b, out);
  if (inGamut(out)) return out;
  let lo = 0, hi = 1;
  for (let i = 0; i < GAMUT_STEPS; i++) {
    const k = (lo + hi) / 2;
    oklabToLinear(L, a * k, b * k, out);
    if (inGamut(out)) lo = k; else hi = k;
  }
  return oklabToLinear(L, a * lo, b * lo, out);
}

/** 8-bit sRGB → [L, a, b]. */
export function rgbToOklab([r, g, b]) {
  const out = [0, 0, 0];
  linearToOklab(DECODE[r], DECODE[g], DECODE[b], out);
  return out;
}

/** '#rrggbb' → [r, g, b]. */
export function parseHexColour(hex) {
  const match = /^#?([0-9a-f]{6})$/i.exec(hex.trim());
  if (!match) throw new Error(`not a #rrggbb colour: ${hex}`);
  const n = parseInt(match[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** The feather width for an image: 0.5 % of its shorter side, at least 2 px. */
export function featherRadius(width, height) {
  return Math.max(2, Math.round(0.005 * Math.min(width, height)));
}

// Mean over a window of 2·radius + 1 along one axis, the window clipped at the image's edge.
function boxPass(src, dst, width, height, radius, horizontal) {
  const [n, lines, step, lineStep] = horizontal ? [width, height, 1, width] : [height, width, width, 1];
  for (let line = 0; line < lines; line++) {
    const base = line * lineStep;
    let sum = 0;
    for (let i = 0; i < Math.min(radius, n - 1) + 1; i++) sum += src[base + i * step];
    for (let i = 0; i < n; i++) {
      const lo = Math.max(0, i - radius), hi = Math.min(n - 1, i + radius);
      dst[base + i * step] = sum / (hi - lo + 1);
      if (i + radius + 1 < n) sum += src[base + (i + radius + 1) * step];
      if (i - radius >= 0) sum -= src[base + (i - radius) * step];
    }
  }
}

/**
 * Where to recolour: a weight in [0, 1] per pixel, 1 deep inside the classes `ids`, ramping to 0 over
 * `radius` px around their edge (a separable box blur of the class mask), and the list of pixels with a
 * weight above 0 (the only pixels `recolour` touches).
 */
export function featherMask(labels, width, height, ids, radius) {
  const chosen = new Uint8Array(256);
  for (const id of ids) chosen[id] = 1;
  const weights = new Float32Array(width * height);
  for (let i = 0; i < labels.length; i++) weights[i] = chosen[labels[i]];
  if (radius > 0) {
    const tmp = new Float32Array(width * height);
    boxPass(weights, tmp, width, height, radius, true);
    boxPass(tmp, weights, width, height, radius, false);
  }
  let count = 0;
  for (let i = 0; i < weights.length; i++) {
    // Running sums leave ~1e-8 crumbs where the true mean is 0: those pixels are outside.
    if (weights[i] < 1e-6) weights[i] = 0; else count++;
  }
  const indices = new Uint32Array(count);
  for (let i = 0, k = 0; i < weights.length; i++) if (weights[i] > 0) indices[k++] = i;
  return { weights, indices, width, height };
}

/** Target L above the region's mean L by more than this (Oklab, 0…1): `lift: 'auto'` lifts lightness. */
export const LIFT_THRESHOLD = 0.15;

// The region's Oklab values, reused across calls (live mode recolours every displayed frame).
let labScratch = new Float32Array(0);

/**
 * Recolour `rgba` (RGBA bytes, width × height of `mask`) towards `colour` ([r, g, b]) with `strength` in [0, 1].
 * Each pixel keeps its Oklab L; its (a, b) is shifted by (target − weighted mean of the region), so chroma
 * variation (texture) survives; the result is blended with the original by weight × strength. Writes into
 * `out` (a copy of `rgba` by default) and returns it; pixels with weight 0 are never written.
 * `lift`: 'auto' (default: lift when the target is much lighter, see LIFT_THRESHOLD), true, or false (L kept).
 */
export function recolour(rgba, mask, colour, strength, out = new Uint8ClampedArray(rgba), { lift = 'auto' } = {}) {
  const { weights, indices } = mask;
  if (!indices.length || strength <= 0) return out;
  const target = rgbToOklab(colour);
  if (labScratch.length < indices.length * 3) labScratch = new Float32Array(indices.length * 3);
  const lab = labScratch;
  const tmp = [0, 0, 0];
  let sumW = 0, sumL = 0, sumA = 0, sumB = 0;
  for (let k = 0; k < indices.length; k++) {
    const p = indices[k] * 4;
    linearToOklab(DECODE[rgba[p]], DECODE[rgba[p + 1]], DECODE[rgba[p + 2]], tmp);
    lab[k * 3] = tmp[0]; lab[k * 3 + 1] = tmp[1]; lab[k * 3 + 2] = tmp[2];
    const w = weights[indices[k]];
    sumW += w; sumL += w * tmp[0]; sumA += w * tmp[1]; sumB += w * tmp[2];
  }
  const shiftA = target[1] - sumA / sumW, shiftB = target[2] - sumB / sumW;
  const liftL = target[0] - sumL / sumW;
  const shiftL = lift === true || (lift === 'auto' && liftL > LIFT_THRESHOLD) ? liftL : 0;
  const s = Math.min(Math.max(strength, 0), 1);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k], p = i * 4, w = weights[i] * s;
    const L = Math.min(Math.max(lab[k * 3] + shiftL, 0), 1);
    oklabToLinearInGamut(L, lab[k * 3 + 1] + shiftA, lab[k * 3 + 2] + shiftB, tmp);
    out[p] = rgba[p] * (1 - w) + encode(tmp[0]) * w; // Uint8ClampedArray rounds half to even and clamps
    out[p + 1] = rgba[p + 1] * (1 - w) + encode(tmp[1]) * w;
    out[p + 2] = rgba[p + 2] * (1 - w) + encode(tmp[2]) * w;
  }
  return out;
}

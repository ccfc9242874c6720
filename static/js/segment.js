// Pre- and post-processing for the face parser, browser side: the JS twin of face_studio/preprocess.py.
// A test holds the two to the same label map.
//
// Pre: resize RGBA pixels to 512×512 exactly as Pillow's BILINEAR resize does (separable triangle filter,
//      widened when shrinking, 22-bit fixed-point coefficients, 8-bit between passes), scale to [0, 1],
//      normalise with ImageNet mean/std, planar NCHW float32.
// Post: labels = argmax(bilinear upsample(logits)). Cheap: a pixel whose four neighbouring logit cells
//      share one argmax takes it directly (a convex mix of vectors with the same argmax keeps it); only
//      pixels near a boundary interpolate all channels. No per-class masks are built.

export const INPUT_SIZE = 512;
export const MEAN = [0.485, 0.456, 0.406];
export const STD = [0.229, 0.224, 0.225];
const PRECISION_BITS = 32 - 8 - 2; // Pillow's Resample.c
const ONE = 2 ** PRECISION_BITS;

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter.
function resampleCoeffs(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const coeffs = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    const k = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) {
      let t = (x + xmin - center + 0.5) * ss;
      if (t < 0) t = -t;
      const w = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      coeffs[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, coeffs, ksize };
}

function clip8(ss) {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resize interleaved pixels (`channels` per pixel, 8-bit) like Pillow's `Image.resize(size, BILINEAR)`.
 * Returns a Uint8Array of outW*outH*3 RGB.
 */
export function resizeBilinearPIL(src, width, height, outW, outH, channels = 4) {
  // Like Pillow: horizontal pass, then vertical; a pass whose size does not change is skipped (it would be
  // the identity anyway).
  const tmp = new Uint8Array(outW * height * 3);
  if (outW === width) {
    for (let i = 0, p = 0; i < width * height; i++, p += channels) {
      tmp[i * 3] = src[p]; tmp[i * 3 + 1] = src[p + 1]; tmp[i * 3 + 2] = src[p + 2];
    }
  } else {
    const h = resampleCoeffs(width, outW);
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = h.bounds[xx * 2], xmax = h.bounds[xx * 2 + 1], k = xx * h.ksize;
        let r = ONE / 2, g = ONE / 2, b = ONE / 2;
        for (let x = 0; x < xmax; x++) {
          const w = h.coeffs[k + x], p = row + (xmin + x) * channels;
          r += src[p] * w; g += src[p + 1] * w; b += src[p + 2] * w;
        }
        const o = (y * outW + xx) * 3;
        tmp[o] = clip8(r); tmp[o + 1] = clip8(g); tmp[o + 2] = clip8(b);
      }
    }
  }
  if (outH === height) return tmp;
  const v = resampleCoeffs(height, outH);
  const out = new Uint8Array(outW * outH * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = v.bounds[yy * 2], ymax = v.bounds[yy * 2 + 1], k = yy * v.ksize;
    for (let xx = 0; xx < outW; xx++) {
      let r = ONE / 2, g = ONE / 2, b = ONE / 2;
      for (let y = 0; y < ymax; y++) {
        const w = v.coeffs[k + y], p = ((ymin + y) * outW + xx) * 3;
        r += tmp[p] * w; g += tmp[p + 1] * w; b += tmp[p + 2] * w;
      }
      const o = (yy * outW + xx) * 3;
      out[o] = clip8(r); out[o + 1] = clip8(g); out[o + 2] = clip8(b);
    }
  }
  return out;
}

/** RGBA pixels of any size → normalised planar (1, 3, 512, 512) Float32Array. */
export function toPixelValues(rgba, width, height, size = INPUT_SIZE) {
  const rgb = resizeBilinearPIL(rgba, width, height, size, size, 4);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = MEAN[c], std = STD[c], o = c * plane;
    for (let i = 0; i < plane; i++) out[o + i] = (rgb[i * 3 + c] / 255 - mean) / std;
  }
  return out;
}

// Half-pixel centres (align_corners=False), as face_studio/preprocess.py::_resize_weights.
function resizeWeights(nIn, nOut) {
  const lo = new Int32Array(nOut), hi = new Int32Array(nOut), frac = new Float32Array(nOut);
  for (let i = 0; i < nOut; i++) {
    let x = (i + 0.5) * (nIn / nOut) - 0.5;
    x = Math.min(Math.max(x, 0), nIn - 1);
    lo[i] = Math.floor(x);
    hi[i] = Math.min(lo[i] + 1, nIn - 1);
    frac[i] = x - lo[i];
  }
  return { lo, hi, frac };
}

/**
 * (C, h, w) logits → (height, width) Uint8Array label map: argmax of the bilinear upsample.
 * Returns {labels, exact} where `exact` counts the boundary pixels that needed full interpolation.
 */
export function logitsToLabels(logits, channels, h, w, height, width) {
  const plane = h * w;
  // 1. argmax at logits resolution.
  const coarse = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    let best = 0, bestV = logits[i];
    for (let c = 1; c < channels; c++) {
      const v = logits[c * plane + i];
      if (v > bestV) { bestV = v; best = c; }
    }
    coarse[i] = best;
  }
  // 2. Per output pixel: shared argmax of the four cells, else interpolate every channel (rows then columns,
  //    the order numpy uses) and take the first maximum.
  const ys = resizeWeights(h, height), xs = resizeWeights(w, width);
  const labels = new Uint8Array(height * width);
  let exact = 0;
  for (let y = 0; y < height; y++) {
    const r0 = ys.lo[y] * w, r1 = ys.hi[y] * w, wy = ys.frac[y];
    for (let x = 0; x < width; x++) {
      const c0 = xs.lo[x], c1 = xs.hi[x];
      const a = coarse[r0 + c0];
      if (a === coarse[r0 + c1] && a === coarse[r1 + c0] && a === coarse[r1 + c1]) {
        labels[y * width + x] = a;
        continue;
      }
      exact++;
      const wx = xs.frac[x];
      let best = 0, bestV = -Infinity;
      for (let c = 0; c < channels; c++) {
        const o = c * plane;
        const top = logits[o + r0 + c0] * (1 - wy) + logits[o + r1 + c0] * wy;
        const bottom = logits[o + r0 + c1] * (1 - wy) + logits[o + r1 + c1] * wy;
        const v = top * (1 - wx) + bottom * wx;
        if (v > bestV) { bestV = v; best = c; }
      }
      labels[y * width + x] = best;
    }
  }
  return { labels, exact };
}

/** Percent of pixels per class id (length = numClasses). */
export function areaPercent(labels, numClasses) {
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return Array.from(counts, (n) => (100 * n) / Math.max(labels.length, 1));
}

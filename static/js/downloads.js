// Downloads of a parse: label map (pixel = class id), colour mask, cut-out of chosen classes, % area JSON.
import { colourMask, cutout } from './overlay.js';
import { encodeGrayPng } from './png.js';
import { areaPercent } from './segment.js';

async function imageDataPng(imageData) {
  const canvas = new OffscreenCanvas(imageData.width, imageData.height);
  canvas.getContext('2d').putImageData(imageData, 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

/** Save `blob` as `filename` through a temporary link. */
export function save(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function stem(name) {
  return (name || 'image').replace(/\.[^.]+$/, '') || 'image';
}

/** Build and save one download. `kind`: 'labels' | 'mask' | 'cutout' | 'json'. */
export async function download(kind, { image, result, labels: table, keep, meta }) {
  const { width, height } = result;
  const base = stem(image.name);
  const palette = table.map((l) => l.color);
  switch (kind) {
    case 'labels':
      return save(await encodeGrayPng(result.labels, width, height), `${base}.labels.png`);
    case 'mask':
      return save(await imageDataPng(colourMask(result.labels, width, height, palette)), `${base}.mask.png`);
    case 'cutout':
      return save(await imageDataPng(cutout(image.rgba, result.labels, width, height, keep)), `${base}.cutout.png`);
    case 'json': {
      const area = areaPercent(result.labels, table.length);
      const body = {
        source: image.name, width, height, ...meta,
        area_percent: Object.fromEntries(table.map((l) => [l.name, Number(area[l.id].toFixed(4))])),
      };
      return save(new Blob([JSON.stringify(body, null, 1)], { type: 'application/json' }), `${base}.json`);
    }
    default:
      throw new Error(`unknown download ${kind}`);
  }
}

// The server fallback: the `parse` API through the one API client (queue position and progress), then
// the label-map PNG decoded back into class ids so the page renders server and browser results alike.

import { call, fileUrl } from './api-client.js';
import { ownerFromCrops } from './faces.js';

async function decodeLabelMap(url) {
  const blob = await (await fetch(url)).blob();
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  const labels = new Uint8Array(bitmap.width * bitmap.height);
  for (let i = 0; i < labels.length; i++) labels[i] = data[i * 4];
  return { labels, width: bitmap.width, height: bitmap.height };
}

/**
 * Parse `file` on the server with `endpoint` (the page config's `api.parse`) and the `faces` choice
 * ('auto' | 'largest' | 'off'; left out for a server whose `parse` has no faces parameter); `onEvent` sees the
 * client's events (queue position, start). Resolves to {labels, width, height, summary, timings, faces, owner,
 * note}. The server sends no owner map: it is rebuilt from the faces' crops (see faces.js ownerFromCrops).
 */
export async function parseOnServer(file, dtype, faces, endpoint, onEvent = () => {}) {
  const t0 = performance.now();
  const payload = endpoint.fields.some((f) => f.name === 'faces') ? { file, dtype, faces } : { file, dtype };
  const [labelMap, , summary] = await call(endpoint, payload, onEvent);
  const decoded = await decodeLabelMap(fileUrl(labelMap));
  const found = summary.faces || [];
  return {
    ...decoded, summary, timings: { ...summary.timings_ms, 'round trip': performance.now() - t0 },
    faces: found, note: summary.faces_note ?? summary.note ?? null,
    owner: found.length ? ownerFromCrops(decoded.labels, decoded.width, decoded.height, found.map((f) => f.crop)) : null,
  };
}

// The server fallback: the Gradio `parse` API over its plain HTTP interface (same origin), then the
// label-map PNG decoded back into class ids so the page renders server and browser results alike.

import { GradioCallError, okJson } from './gradio-queue.js';

const API = '/gradio_api';

// Last `complete` or `error` event of a Gradio SSE stream.
function finalEvent(text) {
  let result = null;
  for (const block of text.split('\n\n')) {
    const event = /^event: (\w+)/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (event === 'complete' || event === 'error') result = { event, data: data ? JSON.parse(data) : null };
  }
  return result;
}

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

/** Parse `file` on the server. Resolves to {labels, width, height, summary, timings}. */
export async function parseOnServer(file, dtype, apiName = 'parse') {
  const t0 = performance.now();
  // 1. Upload the file into Gradio's cache.
  const form = new FormData();
  form.append('files', file, file.name || 'image.png');
  const [path] = await okJson(await fetch(`${API}/upload`, { method: 'POST', body: form }), 'upload');
  // 2. Queue the call, 3. wait for its result.
  const body = { data: [{ path, orig_name: file.name || 'image.png', meta: { _type: 'gradio.FileData' } }, dtype] };
  const { event_id: eventId } = await okJson(await fetch(`${API}/call/${apiName}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  }), 'the parse call');
  const stream = await fetch(`${API}/call/${apiName}/${eventId}`);
  const final = finalEvent(await stream.text());
  if (!final) throw new GradioCallError('the server closed the parse call without an answer');
  if (final.event === 'error') {
    const message = typeof final.data === 'string' ? final.data : final.data?.error || final.data?.message;
    throw new GradioCallError(message || 'the server could not parse this image');
  }
  const [labelMap, , summary] = final.data;
  // 4. Fetch the label map (pixel = class id).
  const decoded = await decodeLabelMap(`${API}/file=${labelMap.path}`);
  const total = performance.now() - t0;
  return { ...decoded, summary, timings: { ...summary.timings_ms, 'round trip': total } };
}

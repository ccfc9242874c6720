// The one client our pages use for our own API (same origin), on Gradio's own JS client, @gradio/client
// (vendored at set-up into static/vendor/gradio-client.js, never a CDN): it speaks Gradio's queue protocol —
// uploads, /queue/join, the event stream with queue position and gr.Progress updates — and follows its
// changes. Calls take a NAMED payload ({prompt, grow, …}); the endpoint's fields (name, kind, default,
// limits), served by Python in the page config (webapp/fields.py), give the order of Gradio's positional
// data, so no parameter list or limit is copied here.

import { Client } from '../vendor/gradio-client.js';

const API = '/gradio_api';

export class ApiError extends Error {}

let connection = null;
/** One connection per page (the app's config and API info are read once). */
function connect() {
  connection ??= Client.connect(`${window.location.origin}/`, { events: ['data', 'status'] }).catch((err) => {
    connection = null;
    throw new ApiError(`connecting to the server failed: ${err.message || err}`);
  });
  return connection;
}

/** Gradio's positional data for `payload`, uploading its Blobs (file fields) in ONE request through the
 *  client's upload_files (left to itself, the client would send one request per file). */
async function positional(app, endpoint, payload, onEvent) {
  const known = new Set(endpoint.fields.map((f) => f.name));
  const extra = Object.keys(payload).filter((k) => !known.has(k));
  if (extra.length) throw new ApiError(`'${endpoint.api}' has no parameter ${extra.join(', ')}`);
  const blobs = endpoint.fields.filter((f) => f.kind === 'file' && payload[f.name] instanceof Blob);
  let uploaded = [];
  if (blobs.length) {
    onEvent({ type: 'uploading' });
    const files = blobs.map((f) => {
      const blob = payload[f.name];
      return blob instanceof File ? blob : new File([blob], `${f.name}.png`, { type: blob.type || 'image/png' });
    });
    const answer = await app.upload_files(app.config.root || window.location.origin, files);
    if (answer.error) throw new ApiError(`the upload failed (${answer.error})`);
    uploaded = answer.files.map((path, i) => ({ path, orig_name: files[i].name, meta: { _type: 'gradio.FileData' } }));
  }
  return endpoint.fields.map((f) => {
    const i = blobs.indexOf(f);
    if (i >= 0) return uploaded[i];
    return f.name in payload ? payload[f.name] : (f.default ?? null);
  });
}

/**
 * Run `endpoint` ({api, fields} from the page config) with the named `payload` (a Blob/File for a file
 * field). `onEvent({type, ...})` sees {type:'uploading'}, {type:'queued', rank, size}, {type:'started'},
 * {type:'progress', done, total, desc}. Resolves to the output list; rejects with the server's message.
 */
export async function call(endpoint, payload, onEvent = () => {}) {
  const app = await connect();
  const data = await positional(app, endpoint, payload, onEvent);
  const apiName = endpoint.api;
  const job = app.submit(`/${apiName}`, data);
  for await (const message of job) {
    if (message.type === 'data') return message.data;
    if (message.type !== 'status') continue;
    if (message.stage === 'error') throw new ApiError(message.message || `'${apiName}' failed on the server`);
    const unit = message.progress_data?.[0];
    if (message.original_msg === 'process_starts') onEvent({ type: 'started' });
    else if (unit) onEvent({ type: 'progress', done: unit.index ?? 0, total: unit.length ?? 0, desc: unit.desc || '' });
    else if (message.stage === 'pending' && message.position !== undefined) {
      onEvent({ type: 'queued', rank: message.position, size: message.size });
    }
  }
  throw new ApiError(`the server closed '${apiName}' without an answer`);
}

/** A URL the page can fetch for a FileData the server returned. */
export function fileUrl(fileData) {
  return fileData.url || `${API}/file=${fileData.path}`;
}

/** One line for a status bar from a call() event, or null for events that need none. */
export function describeEvent(event, what) {
  if (event.type === 'uploading') return 'Uploading…';
  if (event.type === 'queued') return event.rank > 0 ? `Waiting in the server queue for ${what}: position ${event.rank + 1}…` : `Next in the server queue for ${what}…`;
  if (event.type === 'started') return `${what[0].toUpperCase()}${what.slice(1)} on the server…`;
  if (event.type === 'progress' && event.total) return `${what[0].toUpperCase()}${what.slice(1)} on the server: step ${event.done} of ${event.total}…`;
  return null;
}

// The one client our pages use for our own API (same origin, no client library), on Gradio's queue
// protocol: one multipart upload for all files, then /queue/join and the /queue/data event stream, which
// carries the queue position and gr.Progress updates. Calls take a NAMED payload ({prompt, grow, …});
// the endpoint's fields (name, kind, default, limits), served by Python in the page config, give the
// order of Gradio's positional data, so no parameter list or limit is copied here.

const API = '/gradio_api';

export class ApiError extends Error {}

/** The JSON body of `response`, or an ApiError naming `what` failed and the server's detail. */
async function okJson(response, what) {
  if (!response.ok) {
    let detail = '';
    try { detail = (await response.json()).detail || ''; } catch { /* not JSON */ }
    throw new ApiError(`${what} failed (HTTP ${response.status}${detail ? `: ${detail}` : ''})`);
  }
  return response.json();
}

/** Upload `files` ([{blob, name}]) in ONE request; resolves to Gradio FileData objects, in order. */
async function uploadFiles(files) {
  const form = new FormData();
  for (const { blob, name } of files) form.append('files', blob, name);
  const paths = await okJson(await fetch(`${API}/upload`, { method: 'POST', body: form }), 'the upload');
  return paths.map((path, i) => ({ path, orig_name: files[i].name, meta: { _type: 'gradio.FileData' } }));
}

let dependencyIds = null;
async function fnIndex(apiName) {
  if (!dependencyIds) {
    const config = await okJson(await fetch('/config'), 'reading the app config');
    dependencyIds = Object.fromEntries(config.dependencies.filter((d) => d.api_name).map((d) => [d.api_name, d.id]));
  }
  if (!(apiName in dependencyIds)) throw new ApiError(`the server has no '${apiName}' endpoint`);
  return dependencyIds[apiName];
}

/** Gradio's positional data for `payload`, uploading its Blobs (file fields) in one request. */
async function positional(endpoint, payload, onEvent) {
  const known = new Set(endpoint.fields.map((f) => f.name));
  const extra = Object.keys(payload).filter((k) => !known.has(k));
  if (extra.length) throw new ApiError(`'${endpoint.api}' has no parameter ${extra.join(', ')}`);
  const blobs = endpoint.fields.filter((f) => f.kind === 'file' && payload[f.name] instanceof Blob);
  let uploaded = [];
  if (blobs.length) {
    onEvent({ type: 'uploading' });
    uploaded = await uploadFiles(blobs.map((f) => ({ blob: payload[f.name], name: payload[f.name].name || `${f.name}.png` })));
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
  const data = await positional(endpoint, payload, onEvent);
  const apiName = endpoint.api;
  const sessionHash = Math.random().toString(36).slice(2);
  const body = { data, fn_index: await fnIndex(apiName), session_hash: sessionHash, trigger_id: null, event_data: null };
  await okJson(await fetch(`${API}/queue/join`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  }), `queueing '${apiName}'`);
  const response = await fetch(`${API}/queue/data?session_hash=${sessionHash}`);
  if (!response.ok) throw new ApiError(`listening for '${apiName}' failed (HTTP ${response.status})`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new ApiError(`the server closed '${apiName}' without an answer`);
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const line = block.split('\n').find((l) => l.startsWith('data:'));
      if (!line) continue;
      const msg = JSON.parse(line.slice(5));
      switch (msg.msg) {
        case 'estimation': onEvent({ type: 'queued', rank: msg.rank, size: msg.queue_size }); break;
        case 'process_starts': onEvent({ type: 'started' }); break;
        case 'progress': {
          const unit = msg.progress_data?.[0];
          if (unit) onEvent({ type: 'progress', done: unit.index ?? 0, total: unit.length ?? 0, desc: unit.desc || '' });
          break;
        }
        case 'process_completed':
          reader.cancel();
          if (msg.success) return msg.output.data;
          throw new ApiError(msg.output?.error || `'${apiName}' failed on the server`);
        case 'unexpected_error':
          reader.cancel();
          throw new ApiError(msg.message || `'${apiName}' failed on the server`);
        default: break; // heartbeat, log, send_hash …
      }
    }
  }
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

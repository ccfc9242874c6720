// Calling a Gradio endpoint from our own page with its queue protocol (same origin, no client library):
// one multipart upload for all files, then /queue/join and the /queue/data event stream, which carries
// the queue position and gr.Progress updates that the plain /call/ route leaves out.

const API = '/gradio_api';

export class GradioCallError extends Error {}

/** The JSON body of `response`, or a GradioCallError naming `what` failed and the server's detail. */
export async function okJson(response, what) {
  if (!response.ok) {
    let detail = '';
    try { detail = (await response.json()).detail || ''; } catch { /* not JSON */ }
    throw new GradioCallError(`${what} failed (HTTP ${response.status}${detail ? `: ${detail}` : ''})`);
  }
  return response.json();
}

/** Upload `files` ([{blob, name}]) in ONE request; resolves to Gradio FileData objects, in order. */
export async function uploadFiles(files) {
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
  if (!(apiName in dependencyIds)) throw new GradioCallError(`the server has no '${apiName}' endpoint`);
  return dependencyIds[apiName];
}

/**
 * Run endpoint `apiName` with `data` (FileData for files); `onEvent({type, ...})` sees
 * {type:'queued', rank, size}, {type:'started'}, {type:'progress', done, total, desc}.
 * Resolves to the output list; rejects with the server's gr.Error message.
 */
export async function call(apiName, data, onEvent = () => {}) {
  const sessionHash = Math.random().toString(36).slice(2);
  const body = { data, fn_index: await fnIndex(apiName), session_hash: sessionHash, trigger_id: null, event_data: null };
  await okJson(await fetch(`${API}/queue/join`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  }), `queueing '${apiName}'`);
  const response = await fetch(`${API}/queue/data?session_hash=${sessionHash}`);
  if (!response.ok) throw new GradioCallError(`listening for '${apiName}' failed (HTTP ${response.status})`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new GradioCallError(`the server closed '${apiName}' without an answer`);
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
          throw new GradioCallError(msg.output?.error || `'${apiName}' failed on the server`);
        case 'unexpected_error':
          reader.cancel();
          throw new GradioCallError(msg.message || `'${apiName}' failed on the server`);
        default: break; // heartbeat, log, send_hash …
      }
    }
  }
}

/** A URL the page can fetch for a FileData the server returned. */
export function fileUrl(fileData) {
  return fileData.url || `${API}/file=${fileData.path}`;
}

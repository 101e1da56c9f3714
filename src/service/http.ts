// Reading a request body under a cap, and writing JSON answers. A client may send anything, at
// any speed, and may vanish at any point: nothing here throws past the handler or writes to a
// response that is already gone.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { jsonDepth } from '../util/json-depth.js';
import { ApiError } from './errors.js';

/** Deeper JSON is refused: the input is re-serialised for the sandbox, and that recurses. */
const MAX_DEPTH = 100;

export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw new ApiError(400, 'malformed_json', 'the body is empty; expected a JSON object');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, 'malformed_json', `the body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  if (jsonDepth(body, MAX_DEPTH) > MAX_DEPTH) throw new ApiError(422, 'too_deep', `the body nests deeper than ${MAX_DEPTH} levels`);
  return body;
}

const tooLarge = (max: number) => new ApiError(413, 'body_too_large', `the body is larger than ${max} bytes`);

/** Write a JSON answer unless the client has gone (then it is dropped: the run is unaffected). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, e: ApiError, headers: Record<string, string> = {}): void {
  // A refused body may still be arriving: close the connection rather than read the rest.
  const close: Record<string, string> = e.status === 413 || e.status === 408 ? { connection: 'close' } : {};
  sendJson(res, e.status, { error: { code: e.code, message: e.message } }, { ...close, ...headers });
}

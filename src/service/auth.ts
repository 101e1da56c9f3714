// The bearer token TCP clients must send. Read from a file only the service's user can read;
// compared in constant time (both sides hashed first, so their lengths leak nothing either).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { PawlError } from '../errors.js';

export async function readToken(file: string): Promise<Buffer> {
  const info = await stat(file).catch((e: Error) => {
    throw new PawlError('InvalidPolicy', `cannot read the token file ${file}: ${e.message}`);
  });
  if (info.mode & 0o077) throw new PawlError('InvalidPolicy', `the token file ${file} is readable by others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 it`);
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < 16) throw new PawlError('InvalidPolicy', `the token file ${file} must hold a token of at least 16 characters`);
  return digest(token);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether an Authorization header carries the token. */
export function bearerMatches(header: string | undefined, token: Buffer): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return timingSafeEqual(digest(m?.[1] ?? ''), token) && m !== null;
}

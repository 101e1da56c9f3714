// pawl doctor [--json]: prints the host report; exit 0 when the default policy is fully enforceable, 1 otherwise.
import { parseArgs } from 'node:util';
import { UsageError } from '../args.js';
import { out } from '../output.js';

export async function doctorCommand(args: string[]): Promise<number> {
  let json = false;
  try {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (positionals.length) throw new Error(`unexpected argument "${positionals[0]}"`);
    json = values.json === true;
  } catch (e) {
    throw new UsageError(`usage: pawl doctor [--json] (${(e as Error).message})`);
  }
  const [{ hostConfig }, { runDoctor, formatDoctor }] = await Promise.all([import('../../config/host.js'), import('../../doctor/index.js')]);
  const report = await runDoctor(hostConfig());
  out(json ? JSON.stringify(report, null, 2) : formatDoctor(report));
  return report.enforceable ? 0 : 1;
}

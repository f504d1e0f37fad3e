/**
 * Runs the node plumbing inside the network namespace this process was started in, the way the
 * agent does: `node … plumbing-driver.ts setUp|tearDown <config json>` or `underlayMtu <ipv4>`.
 */
import { NodePlumbing, type NodePlumbingConfig, underlayMtuOf } from '../../../src/plumbing/index.js';

const [command, arg = ''] = process.argv.slice(2);
const plumbing = new NodePlumbing();
if (command === 'setUp') {
  await plumbing.setUp(JSON.parse(arg) as NodePlumbingConfig);
} else if (command === 'tearDown') {
  await plumbing.tearDown(JSON.parse(arg) as NodePlumbingConfig);
} else if (command === 'underlayMtu') {
  process.stdout.write(JSON.stringify(await underlayMtuOf(arg)));
} else {
  throw new Error(`unknown command "${command}"`);
}

/**
 * `bin/sidecast.js` for tests: the same entry point, run from the TypeScript sources through tsx,
 * so CLI tests exercise the current code without a build step.
 */
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2), process.env);

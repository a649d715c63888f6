#!/usr/bin/env node
// Measures what the browser client costs a page: src/client bundled and minified by esbuild as an
// ES module, then gzipped at the highest level. Run `node scripts/client-size.js` to re-measure
// the figure quoted in the README; `--json` prints it machine-readably.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

const result = await build({
  entryPoints: ['src/client/index.ts'],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  logLevel: 'silent',
});
const code = result.outputFiles[0].contents;
const sizes = { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
if (process.argv.includes('--json')) console.log(JSON.stringify(sizes));
else
  console.log(
    `sidecast/client: ${sizes.minified} bytes minified, ${sizes.gzipped} bytes minified + gzipped`,
  );

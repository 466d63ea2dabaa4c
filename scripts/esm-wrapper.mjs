// Writes dist/index.mjs and dist/index.d.mts: the ESM entry re-exports the
// CommonJS build (one module instance for require and import alike).
import { createRequire } from 'node:module';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
if (!existsSync(`${dist}index.js`)) {
  console.warn('esm-wrapper: dist/index.js does not exist (no lib/index.ts yet): no ESM entry written');
  process.exit(0);
}

const cjs = createRequire(import.meta.url)('../dist/index.js');
const names = Object.keys(cjs).filter((name) => name !== 'default' && name !== '__esModule');
const bad = names.filter((name) => !/^[A-Za-z_$][\w$]*$/.test(name));
if (bad.length > 0) throw new Error(`esm-wrapper: not identifiers: ${bad.join(', ')}`);

writeFileSync(
  `${dist}index.mjs`,
  `import cjs from './index.js';\n\n` +
    names.map((name) => `export const ${name} = cjs.${name};\n`).join(''),
);
writeFileSync(`${dist}index.d.mts`, `export * from './index.js';\n`);
console.log(`esm-wrapper: dist/index.mjs exports ${names.join(', ')}`);

// Times the anomaly core inside V8 (Node.js), per request. Usage: run.sh
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const wasi = new WASI({ version: 'preview1', args: [], env: {} });
const mod = await WebAssembly.compile(readFileSync(process.argv[2]));
const imports = wasi.getImportObject();
// The shared crate links the proxy-wasm host calls; the core never calls them.
imports.env = {};
for (const i of WebAssembly.Module.imports(mod)) {
  if (i.module === 'env') imports.env[i.name] = () => { throw new Error(`host call ${i.name}`); };
}
const { exports } = await WebAssembly.instantiate(mod, imports);

function run(name, body, reps) {
  const bytes = Buffer.from(body);
  const p = exports.alloc(bytes.length || 1);
  new Uint8Array(exports.memory.buffer, p, bytes.length).set(bytes);
  exports.scan(p, bytes.length, 300); // warm up: V8 tiers the code up
  const start = process.hrtime.bigint();
  const score = exports.scan(p, bytes.length, reps);
  const us = Number(process.hrtime.bigint() - start) / 1000 / reps;
  console.log(`${name.padEnd(26)} ${us.toFixed(1).padStart(8)} us/request  score=${score}`);
}

const prose = "It's a fine day; select the best one (or two) from the list. ";
const order = { user: { name: "Ann O'Brien", email: 'ann@example.com' }, items: [] };
while (JSON.stringify(order).length < 1000) order.items.push({ sku: 'SKU-123', qty: 2, title: 'Blue mug, 350 ml' });

for (const f of (process.env.BENCH_BODIES || '').split(',').filter(Boolean)) {
  run(f.split('/').pop(), readFileSync(f), 300);
}
console.log(`node ${process.version}, V8 ${process.versions.v8}`);
// The requests of tests/perf.rs.
run('GET, 8 headers, no body', '', 5000);
run('1 KiB JSON order', JSON.stringify(order), 2000);
run('1 KiB JSON with sqli', JSON.stringify({ q: "1' or '1'='1", pad: 'x'.repeat(1000) }), 2000);
run('16 KiB JSON prose field', JSON.stringify({ v: prose.repeat(Math.floor(16384 / prose.length)) }), 100);
for (const unit of ['<a ', '&#x', '%25u', "'or ", '/*', "a'b ", '1;x|', '\\u00', ';(', '|id ', 'a|b', '#', '-- ',
  '../', '${', '`', '&&', '$(', '<!--', '%']) {
  run(`16 KiB crafted ${JSON.stringify(unit)}`, JSON.stringify({ v: unit.repeat(Math.floor(16384 / unit.length)) }), 5);
}

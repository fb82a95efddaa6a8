// The OIDC provider of docker-compose.yaml: integration-tests/oidc/provider.mjs (npm
// `oidc-provider`) with a fresh RS256 signing key made at start, so no private key lives
// in the repo. A restart rotates the key; meshward fetches the new JWKS on the unknown kid.
//
//   node oidc-dev.mjs [provider.mjs options: --port, --host, --scope, ...]
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = privateKey.export({ format: 'jwk' });
Object.assign(jwk, { kid: `compose-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' });
const file = join(mkdtempSync(join(tmpdir(), 'meshward-oidc-')), 'keys.json');
writeFileSync(file, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });

// provider.mjs reads its options from process.argv.
process.argv.push('--jwks', file);
await import(process.env.MESHWARD_OIDC_PROVIDER || '../oidc/provider.mjs');

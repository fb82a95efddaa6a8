// A real OpenID Connect provider (npm `oidc-provider`) for the integration tests.
//
//   node provider.mjs --port 9000 --jwks keys.json [--host 127.0.0.1] [--issuer URL]
//
// - keys.json is a JWKS of *private* JWKs; the first RS256-capable key signs. The tests
//   rewrite this file and restart the process to rotate keys.
// - client_credentials grant enabled for client `meshward-test` / secret `meshward-secret`.
// - Access tokens are JWTs (resource indicators): audience `urn:meshward:api`,
//   scopes `read write`, RS256, 1h TTL. The resource is the default, so a plain
//   client_credentials request gets a JWT.
// - Prints one line `READY <issuer>` on stdout once listening.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    host: { type: 'string', default: '127.0.0.1' },
    jwks: { type: 'string' },
    issuer: { type: 'string' },
    audience: { type: 'string', default: 'urn:meshward:api' },
    scope: { type: 'string', default: 'read write' },
  },
});

if (!values.jwks) {
  console.error('provider.mjs: --jwks FILE is required');
  process.exit(2);
}

const port = Number(values.port);
const issuer = values.issuer || `http://${values.host}:${port}`;
const jwks = JSON.parse(readFileSync(values.jwks, 'utf8'));
const audience = values.audience;
const apiScope = values.scope;

const configuration = {
  jwks,
  clients: [
    {
      client_id: 'meshward-test',
      client_secret: 'meshward-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: apiScope,
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['openid', ...apiScope.split(' ')],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== audience) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: apiScope,
          audience,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  cookies: { keys: ['meshward-integration-tests-cookie-key'] },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));

const server = provider.listen(port, values.host, () => {
  console.log(`READY ${issuer}`);
});

function shutdown() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

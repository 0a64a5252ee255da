// A real OpenID provider (panva's `oidc-provider`) on loopback, for Tributary's tests.
//
// Install once:  npm ci --prefix infra/scripts/oidc
// Run:           node infra/scripts/oidc/provider.mjs '<config JSON>'
//
// The configuration is ONE JSON document, passed as the first command-line argument
// (or, when there is no argument, in the environment variable TRIBUTARY_OIDC_PROVIDER_CONFIG):
//
//   {
//     "port": 0,                  // 0 = pick a free port; a fixed port is retried while busy
//     "key_set": "any string",    // optional label, prefixed to the key ids
//     "clients": [{
//       "client_id": "...",
//       "client_secret": "...",
//       "redirect_uris": ["http://127.0.0.1:9/callback"],
//       "id_token_signed_response_alg": "RS256",  // or "ES256"
//       "grant_types": ["authorization_code"],     // optional; add "refresh_token" for a
//                                                  // provider-connection (integration) client
//       "token_endpoint_auth_method": "client_secret_basic"  // optional, or "client_secret_post"
//     }]
//   }
//
// Every start generates fresh signing keys (RSA 2048 for RS256, EC P-256 for ES256) with random
// key ids, whatever `key_set` says: a restart always publishes new keys and new kids.
//
// When listening, prints exactly one line to stdout:  ISSUER http://127.0.0.1:<port>
// (logs go to stderr). Exits when stdin closes (so the test process that spawned it with a
// piped stdin takes it down by exiting) and on SIGTERM / SIGINT.
//
// What the provider does:
// - issuer http://127.0.0.1:<port>; discovery at /.well-known/openid-configuration;
// - authorization code flow only (response_type=code), PKCE with S256 required for every client;
// - scopes openid, email, profile; the ID token itself carries the scope's claims (email,
//   email_verified, name) so a relying party needs no userinfo call; userinfo is enabled too;
// - the authorization response carries `iss` (RFC 9207) and discovery advertises
//   authorization_response_iss_parameter_supported: true (always on in oidc-provider 8);
// - token endpoint client authentication: client_secret_basic or client_secret_post;
// - sign-in through the bundled development forms (features.devInteractions): any login, any
//   password. The account id is the login; its email is `<login>@example.com`, verified unless
//   the login starts with `unverified`.
// - as an OAuth 2.0 provider for workspace connections (clients whose grant_types include
//   "refresh_token"): every code exchange issues a refresh token (no `offline_access` or
//   `prompt=consent` needed, like Slack, Notion or Dropbox with token_access_type=offline), not
//   bound to the login session; every refresh rotates it (rotateRefreshToken: true); presenting
//   a refresh token that was already rotated away revokes the whole grant (its access and
//   refresh tokens) and answers invalid_grant "refresh token already used" (oidc-provider's
//   lib/actions/grants/refresh_token.js); token revocation (RFC 7009) at /token/revocation.
// - test hooks: GET /__test/token-requests lists every token and revocation request served so
//   far as [{endpoint, grant_type, status, error}] (the tests count refreshes with it).

import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

function readConfig() {
  const raw = process.argv[2] ?? process.env.TRIBUTARY_OIDC_PROVIDER_CONFIG;
  if (!raw) fail('missing configuration JSON (first argument or TRIBUTARY_OIDC_PROVIDER_CONFIG)');
  let config;
  try {
    config = JSON.parse(raw);
  } catch (err) {
    fail(`configuration is not JSON: ${err.message}`);
  }
  const port = config.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${JSON.stringify(port)}`);
  if (!Array.isArray(config.clients)) fail('`clients` must be a list');
  const clients = config.clients.map((c) => {
    const alg = c.id_token_signed_response_alg ?? 'RS256';
    if (alg !== 'RS256' && alg !== 'ES256') fail(`client ${c.client_id}: unsupported alg ${alg}`);
    if (!c.client_id || !c.client_secret || !Array.isArray(c.redirect_uris)) {
      fail('each client needs client_id, client_secret and redirect_uris');
    }
    const grantTypes = c.grant_types ?? ['authorization_code'];
    if (!Array.isArray(grantTypes) || grantTypes.some((g) => g !== 'authorization_code' && g !== 'refresh_token')) {
      fail(`client ${c.client_id}: grant_types may only hold authorization_code and refresh_token`);
    }
    const authMethod = c.token_endpoint_auth_method ?? 'client_secret_basic';
    if (authMethod !== 'client_secret_basic' && authMethod !== 'client_secret_post') {
      fail(`client ${c.client_id}: unsupported token_endpoint_auth_method ${authMethod}`);
    }
    return {
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      id_token_signed_response_alg: alg,
      grant_types: grantTypes,
      response_types: ['code'],
      token_endpoint_auth_method: authMethod,
    };
  });
  const keySet = String(config.key_set ?? config.key_seed ?? 'keys');
  return { port, clients, keySet };
}

// Fresh private signing keys, as JWKs with kids unique to this start.
function signingKeys(keySet) {
  const run = crypto.randomBytes(8).toString('hex');
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return [
    { ...rsa.export({ format: 'jwk' }), kid: `${keySet}-rs256-${run}`, alg: 'RS256', use: 'sig' },
    { ...ec.export({ format: 'jwk' }), kid: `${keySet}-es256-${run}`, alg: 'ES256', use: 'sig' },
  ];
}

function claimsFor(id) {
  return {
    sub: id,
    email: `${id}@example.com`,
    email_verified: !id.startsWith('unverified'),
    name: id,
  };
}

async function listen(server, port) {
  // A fixed port (a restart on the same issuer) may still be held for a moment by the
  // previous process: retry for a few seconds.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      return server.address().port;
    } catch (err) {
      if (err.code !== 'EADDRINUSE' || port === 0 || Date.now() > deadline) throw err;
      await new Promise((resolve) => { setTimeout(resolve, 100); });
    }
  }
}

async function main() {
  const { port: wantedPort, clients, keySet } = readConfig();

  // Listen first so that port 0 resolves to a real port before the issuer is fixed.
  const server = http.createServer();
  const port = await listen(server, wantedPort);
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: signingKeys(keySet) },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
      // Plain http on loopback: no `secure` flag, and `lax` rather than `none` (which would
      // need `secure` in a browser).
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    responseTypes: ['code'],
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // Put the claims of the granted scopes in the ID token too, not only in userinfo.
    conformIdTokenClaims: false,
    pkce: {
      methods: ['S256'],
      required: () => true,
    },
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
      // Only what the tests use.
      registration: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: false },
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    // Connection clients get a refresh token from every code exchange, valid beyond the
    // login session, rotated on every use (reuse of a rotated one revokes the grant).
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    async expiresWithSession(ctx, code) {
      return !ctx.oidc.client.grantTypeAllowed('refresh_token') && !code.scopes.has('offline_access');
    },
    rotateRefreshToken: true,
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return claimsFor(id);
        },
      };
    },
    clientBasedCORS: () => false,
    renderError(ctx, out, error) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>oops</h1><pre>${
        Object.entries(out).map(([k, v]) => `${k}: ${String(v).replace(/[<>&"']/g, '')}`).join('\n')
      }</pre></body></html>`;
      if (error) process.stderr.write(`provider.mjs: render error: ${error.stack ?? error}\n`);
    },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
  });

  // Test hook: what reached the token and revocation endpoints.
  const tokenRequests = [];
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/__test/token-requests') {
      ctx.body = tokenRequests;
      return;
    }
    await next();
    if (ctx.method === 'POST' && (ctx.path === '/token' || ctx.path === '/token/revocation')) {
      tokenRequests.push({
        endpoint: ctx.path,
        grant_type: ctx.oidc?.params?.grant_type ?? null,
        status: ctx.status,
        error: (ctx.body && typeof ctx.body === 'object' && ctx.body.error) || null,
      });
    }
  });

  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`provider.mjs: server_error: ${err.stack ?? err}\n`);
  });

  server.on('request', provider.callback());
  process.stdout.write(`ISSUER ${issuer}\n`);
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
// Exit with the process that holds the other end of our stdin.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.on('data', () => {});
process.stdin.resume();

main().catch((err) => fail(err.stack ?? String(err)));

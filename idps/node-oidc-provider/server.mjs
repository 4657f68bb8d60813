// node-oidc-provider, unmodified, as a second target IdP for loadgen: its own dev login and
// consent pages, PKCE, refresh-token rotation, introspection. Configuration only; no patches.
//
// Prints `listening on http://127.0.0.1:PORT` (https with TLS_CERT) once it accepts connections
// (the same contract as mock-idp), and stops on SIGTERM or SIGINT. Environment:
//   PORT                 port on 127.0.0.1 (0: any free port; default 0)
//   TLS_CERT, TLS_KEY    serve HTTPS with this PEM certificate and key, HTTP/2 and HTTP/1.1 by
//                        ALPN (node's own http2 server, allowHTTP1)
//   ISSUER_PATH          mount the provider under this path, e.g. /oidc (an issuer with a path)
//   ACCESS_TOKEN_FORMAT  opaque (default, the provider's own) or jwt
//   CODE_TTL_S           authorization code lifetime in seconds (default 60, the provider's)
//   USERS                test users user-loadtest-00001 ... (default 10000)
//   CONSENT              remembered (default: a grant is asked for once per session) or every
//                        (the consent page on every authorization, through the documented
//                        loadExistingGrant option)
//   CLIENT_CERT          a PEM certificate (self-signed) of loadtest-client: with TLS_CERT, the
//                        client then authenticates by presenting it in the TLS handshake (RFC 8705
//                        self_signed_tls_client_auth), every client being asked for one
//   DPOP_NONCE           1: require a nonce the provider issued in every DPoP proof at the token
//                        endpoint (RFC 9449 section 8; DPoP itself is on by the provider's
//                        default)
//   LOG_ERRORS           1: print why each refused request was refused, on stderr
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createSecureServer } from 'node:http2';
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import MemoryStore from './memory_store.mjs';

const port = Number(process.env.PORT ?? 0);
const issuerPath = (process.env.ISSUER_PATH ?? '').replace(/\/+$/, '');
const accessTokenFormat = process.env.ACCESS_TOKEN_FORMAT ?? 'opaque';
const codeTtl = Number(process.env.CODE_TTL_S ?? 60);
const users = Number(process.env.USERS ?? 10000);
const consent = process.env.CONSENT ?? 'remembered';
const dpopNonce = process.env.DPOP_NONCE === '1';
// CLIENT_CERT: the client's certificate, registered as its key with the certificate itself
// (x5c), which is how self_signed_tls_client_auth matches what the handshake presents.
const clientCertificate = process.env.CLIENT_CERT
  ? new X509Certificate(readFileSync(process.env.CLIENT_CERT))
  : undefined;
// CLIENT_JWKS: a JWKS file of loadtest-client's public keys; the client then authenticates with
// private_key_jwt (RFC 7523) instead of its secret, at the token and introspection endpoints.
const clientJwks = process.env.CLIENT_JWKS
  ? JSON.parse(readFileSync(process.env.CLIENT_JWKS, 'utf8'))
  : undefined;

if (!['remembered', 'every'].includes(consent)) {
  console.error(`CONSENT must be remembered or every, not ${consent}`);
  process.exit(2);
}
if (!['opaque', 'jwt'].includes(accessTokenFormat)) {
  console.error(`ACCESS_TOKEN_FORMAT must be opaque or jwt, not ${accessTokenFormat}`);
  process.exit(2);
}

const userPattern = /^user-loadtest-(\d{5})$/;

// The resource server that JWT access tokens are for; node-oidc-provider issues JWT access
// tokens only for a resource indicated (RFC 8707), so with ACCESS_TOKEN_FORMAT=jwt every
// authorization gets this one by default.
function resourceIndicators(issuer) {
  return {
    enabled: true,
    defaultResource: () => issuer,
    useGrantedResource: () => true,
    getResourceServerInfo: () => ({
      scope: 'openid profile email',
      audience: issuer,
      accessTokenFormat: 'jwt',
      accessTokenTTL: 3600,
      jwt: { sign: { alg: 'RS256' } },
    }),
  };
}

function configuration(issuer) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'loadtest-rs256' };
  return {
    adapter: MemoryStore,
    clients: [
      {
        client_id: 'loadtest-client',
        redirect_uris: ['http://127.0.0.1:3000/callback'],
        // client_credentials too: the same client asks for tokens for itself (loadgen's
        // client-credentials scenario), as mock-idp's and the Keycloak realm's does.
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        ...(clientCertificate
          ? {
              jwks: {
                keys: [{
                  ...clientCertificate.publicKey.export({ format: 'jwk' }),
                  x5c: [clientCertificate.raw.toString('base64')],
                }],
              },
              token_endpoint_auth_method: 'self_signed_tls_client_auth',
            }
          : clientJwks
            ? { jwks: clientJwks, token_endpoint_auth_method: 'private_key_jwt' }
            : { client_secret: 'loadtest-secret', token_endpoint_auth_method: 'client_secret_basic' }),
      },
      {
        client_id: 'loadtest-public',
        redirect_uris: ['http://127.0.0.1:3000/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    ],
    async findAccount(_ctx, id) {
      const match = userPattern.exec(id);
      if (!match || Number(match[1]) < 1 || Number(match[1]) > users) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@loadtest.example`, email_verified: true, name: id };
        },
      };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // The provider's default methods, and with CLIENT_CERT the certificate.
    ...(clientCertificate
      ? {
          clientAuthMethods: [
            'client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt',
            'none', 'self_signed_tls_client_auth',
          ],
        }
      : {}),
    cookies: { keys: [randomBytes(32).toString('hex')] },
    jwks: { keys: [jwk] },
    // PKCE for every client, as loadgen always sends it (the provider's default requires it only
    // for public clients).
    pkce: { required: () => true },
    // Refresh tokens for the code grant without the offline_access consent step, and a new one
    // on every use: replaying a rotated token revokes its grant (the provider's own behaviour).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // With CONSENT=every only the grant the user approved in this very interaction is found, so
    // every authorization request shows the consent page again.
    ...(consent === 'every'
      ? {
          loadExistingGrant: async (ctx) => {
            const grantId = ctx.oidc.result?.consent?.grantId;
            return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
          },
        }
      : {}),
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: codeTtl,
      ClientCredentials: 3600,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
      Interaction: 3600,
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      // With CLIENT_CERT: the certificate of the TLS handshake (asked of every client, required
      // of none), as PEM.
      ...(clientCertificate
        ? {
            mTLS: {
              enabled: true,
              selfSignedTlsClientAuth: true,
              getCertificate(ctx) {
                const peer = ctx.req.socket.getPeerCertificate?.();
                return peer?.raw ? new X509Certificate(peer.raw).toString() : undefined;
              },
            },
          }
        : {}),
      // DPoP is on by default; with DPOP_NONCE=1 the token endpoint requires the nonces it
      // hands out (signed with a secret made at start), as mock-idp's --dpop-nonce does.
      ...(dpopNonce
        ? {
            dPoP: {
              enabled: true,
              nonceSecret: randomBytes(32),
              requireNonce: (ctx) => ctx.oidc.route === 'token',
            },
          }
        : {}),
      ...(accessTokenFormat === 'jwt' ? { resourceIndicators: resourceIndicators(issuer) } : {}),
    },
  };
}

const tls = process.env.TLS_CERT
  ? { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) }
  : undefined;
const server = tls
  ? createSecureServer({ ...tls, allowHTTP1: true, requestCert: Boolean(clientCertificate), rejectUnauthorized: false })
  : createServer();
server.listen(port, '127.0.0.1', () => {
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  const issuer = `${base}${issuerPath}`;
  const provider = new Provider(issuer, configuration(issuer));
  // Quiet by default: the dev interactions warn on every start that they are for development.
  provider.on('server_error', (_ctx, error) => console.error(`server_error: ${error.message}`));
  // LOG_ERRORS=1 explains each refused token request (what the provider saw), for debugging.
  if (process.env.LOG_ERRORS) {
    for (const event of ['grant.error', 'authorization.error', 'introspection.error']) {
      provider.on(event, (_ctx, error) => console.error(`${event}: ${error.message} (${error.error_detail ?? ''})`));
    }
  }
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (issuerPath) {
      if (req.url !== issuerPath && !req.url.startsWith(`${issuerPath}/`) && !req.url.startsWith(`${issuerPath}?`)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      // Mounted under the issuer's path: the provider sees the rest, and reads the mount from
      // originalUrl when it builds its own URLs.
      req.originalUrl = req.url;
      req.url = req.url.slice(issuerPath.length) || '/';
    }
    callback(req, res);
  });
  console.log(`listening on ${base}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

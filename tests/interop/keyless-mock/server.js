#!/usr/bin/env node
// Local Fulcio, Rekor (v1) and RFC 3161 TSA stand-ins for agentgate's keyless signing test.
//
// @sigstore/mock only offers request handlers for in-process interception (nock); this script
// serves the same handlers over real HTTP on 127.0.0.1 so that a separate process (agentgate,
// through sigstore-rust's clients) can talk to them. Where the mock does less than the real
// service, this file adds it, each in one place below:
// - Rekor `dsse` v0.0.1: the real log checks the envelope signature against the certificate
//   and stores a canonical body (envelopeHash, payloadHash, signatures); the mock would store
//   the proposed entry as is, which no verifier accepts.
// - TSA: sigstore-rust sends a DER TimeStampReq (application/timestamp-query, RFC 3161); the
//   mock reads sigstore-js's JSON request. The DER request is parsed here and its nonce, of any
//   length, is echoed exactly.
//
// Usage: node server.js --dir DIR [--lifetime SECONDS] [--subject URI] [--issuer URL]
// Writes DIR/trusted_root.json and DIR/token (a signed JWT the mock Fulcio accepts), then
// prints one JSON line {"url", "trusted_root", "token_file", "subject", "issuer"} on stdout.
// Listens on 127.0.0.1 only, on a free port. Exits after --lifetime seconds (default 120),
// when its stdin closes (the test that started it died) or on SIGTERM/SIGINT.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const mock = require('@sigstore/mock');
const { TrustedRoot, HashAlgorithm, PublicKeyDetails } = require('@sigstore/protobuf-specs');
const asn1js = require('asn1js');
const pkijs = require('pkijs');
const jose = require('jose');

const MAX_BODY = 1 << 20;

function parseArgs(argv) {
  const args = {
    dir: null,
    lifetime: 120,
    subject: 'https://github.com/agentgate-test/app/.github/workflows/gate.yml@refs/heads/main',
    issuer: 'https://token.actions.githubusercontent.com',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw new Error(`missing value for ${k}`);
    switch (k) {
      case '--dir': args.dir = v; break;
      case '--lifetime': args.lifetime = Number(v); break;
      case '--subject': args.subject = v; break;
      case '--issuer': args.issuer = v; break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!args.dir) throw new Error('--dir is required');
  if (!(args.lifetime > 0 && args.lifetime <= 600)) throw new Error('--lifetime must be in 1..600');
  return args;
}

function newKeyPair() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// DSSE pre-authentication encoding.
function pae(type, body) {
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `),
    body,
  ]);
}

// What Rekor does with a proposed `dsse` v0.0.1 entry: verify each signature with its
// verifier over the PAE, then store hashes and signatures instead of the envelope.
function canonicalDsse(proposed) {
  const content = proposed.spec && proposed.spec.proposedContent;
  if (!content) return proposed;
  const envelope = JSON.parse(content.envelope);
  const payload = Buffer.from(envelope.payload, 'base64');
  const verifiers = content.verifiers.map((v) => Buffer.from(v, 'base64').toString('utf8'));
  const message = pae(envelope.payloadType, payload);
  const signatures = envelope.signatures.map((s) => {
    const sig = Buffer.from(s.sig, 'base64');
    const verifier = verifiers.find((pem) => {
      const key = new crypto.X509Certificate(pem).publicKey;
      return crypto.verify('sha256', message, key, sig);
    });
    if (!verifier) throw new Error('dsse: no verifier matches the envelope signature');
    return { signature: s.sig, verifier: Buffer.from(verifier).toString('base64') };
  });
  const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
  return {
    apiVersion: proposed.apiVersion,
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(content.envelope)) },
      payloadHash: { algorithm: 'sha256', value: sha256(payload) },
      signatures,
    },
  };
}

// RFC 3161 request (DER) to the fields the mock TSA signs; the nonce goes through as bytes.
function parseTimeStampReq(der) {
  const req = pkijs.TimeStampReq.fromBER(new Uint8Array(der).buffer);
  return {
    artifactHash: Buffer.from(req.messageImprint.hashedMessage.valueBlock.valueHexView),
    hashAlgorithmOID: req.messageImprint.hashAlgorithm.algorithmId,
    nonceBytes: req.nonce ? Buffer.from(req.nonce.valueBlock.valueHexView) : null,
    policyOID: req.reqPolicy || '1.3.6.1.4.1.57264.2',
    certReq: req.certReq === true,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.dir, { recursive: true });

  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;

  const ctlogKeys = newKeyPair();
  const ctlog = await mock.initializeCTLog(ctlogKeys);
  const ca = await mock.initializeCA(newKeyPair(), ctlog);
  const tlogKeys = newKeyPair();
  const tlog = await mock.initializeTLog(url, tlogKeys);
  const tsa = await mock.initializeTSA(newKeyPair());

  // The mock TSA writes a JS number as the nonce; RFC 3161 nonces are arbitrary integers
  // (sigstore-rust sends 64 random bits), so the TSTInfo gets the request's bytes instead.
  const tstInfo = tsa.tstInfo.bind(tsa);
  tsa.tstInfo = (req) => {
    const info = tstInfo({ ...req, nonce: 0 });
    info.nonce = req.nonceBytes
      ? new asn1js.Integer({ valueHex: req.nonceBytes })
      : undefined;
    return info;
  };

  // Whole seconds: pkijs writes milliseconds into GeneralizedTime, which DER decoders used
  // for X.509 and RFC 3161 (sigstore-rust's) reject; real TSAs send whole seconds or less.
  tsa.getCurrentTime = () => new Date(Math.floor(Date.now() / 1000) * 1000);

  const fulcio = mock.fulcioHandler(ca, { strict: true });
  const rekor = mock.rekorHandler(tlog, { strict: true });

  // Certificates and keys are valid from a little before now, so that clock granularity
  // cannot put the first certificate before its CA's validity.
  const start = new Date(Date.now() - 60 * 1000);
  const spki = (k) => k.publicKey.export({ format: 'der', type: 'spki' });
  const trustedRoot = TrustedRoot.toJSON({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{
      baseUrl: url,
      hashAlgorithm: HashAlgorithm.SHA2_256,
      publicKey: {
        rawBytes: spki(tlogKeys),
        keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
        validFor: { start },
      },
      logId: { keyId: crypto.createHash('sha256').update(spki(tlogKeys)).digest() },
    }],
    certificateAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
      uri: url,
      certChain: { certificates: [{ rawBytes: Buffer.from(ca.rootCertificate) }] },
      validFor: { start },
    }],
    ctlogs: [{
      baseUrl: url,
      hashAlgorithm: HashAlgorithm.SHA2_256,
      publicKey: {
        rawBytes: spki(ctlogKeys),
        keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
        validFor: { start },
      },
      logId: { keyId: Buffer.from(ctlog.logID) },
    }],
    timestampAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'tsa' },
      uri: `${url}/api/v1/timestamp`,
      certChain: {
        certificates: [
          { rawBytes: Buffer.from(tsa.intCertificate) },
          { rawBytes: Buffer.from(tsa.rootCertificate) },
        ],
      },
      validFor: { start },
    }],
  });
  const rootFile = path.join(args.dir, 'trusted_root.json');
  fs.writeFileSync(rootFile, JSON.stringify(trustedRoot, null, 2));

  // The mock Fulcio reads claims without checking the signature; the token is signed anyway,
  // shaped like a GitHub Actions token (audience "sigstore"), and valid for ten minutes.
  const oidcKey = await jose.generateKeyPair('ES256');
  const token = await new jose.SignJWT({})
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .setIssuer(args.issuer)
    .setSubject(args.subject)
    .setAudience('sigstore')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(oidcKey.privateKey);
  const tokenFile = path.join(args.dir, 'token');
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });

  server.on('request', async (req, res) => {
    const reply = (status, body, type) => {
      res.writeHead(status, { 'Content-Type': type || 'text/plain' });
      res.end(body);
    };
    try {
      if (req.method !== 'POST') return reply(405, 'POST only\n');
      const body = await readBody(req);
      let out;
      if (req.url === fulcio.path) {
        out = await fulcio.fn(body.toString('utf8'));
      } else if (req.url === rekor.path) {
        const proposed = JSON.parse(body.toString('utf8'));
        const entry = proposed.kind === 'dsse' ? canonicalDsse(proposed) : proposed;
        out = await rekor.fn(JSON.stringify(entry));
      } else if (req.url === '/api/v1/timestamp') {
        const response = await tsa.timestamp(parseTimeStampReq(body));
        out = { statusCode: 200, response, contentType: 'application/timestamp-reply' };
      } else {
        return reply(404, `no such endpoint: ${req.url}\n`);
      }
      process.stderr.write(`keyless-mock: ${req.url} -> ${out.statusCode}\n`);
      reply(out.statusCode, out.response, out.contentType);
    } catch (e) {
      process.stderr.write(`keyless-mock: ${req.url}: ${e.message}\n`);
      reply(400, `${e.message}\n`);
    }
  });

  const stop = () => { server.close(); process.exit(0); };
  setTimeout(() => {
    process.stderr.write(`keyless-mock: lifetime of ${args.lifetime}s over, exiting\n`);
    process.exit(0);
  }, args.lifetime * 1000);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();

  process.stdout.write(JSON.stringify({
    url,
    trusted_root: rootFile,
    token_file: tokenFile,
    subject: args.subject,
    issuer: args.issuer,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`keyless-mock: ${e.stack || e.message}\n`);
  process.exit(1);
});

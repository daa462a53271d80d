#!/usr/bin/env node
// Verify an agentgate bundle with sigstore-js (@sigstore/verify), offline, with a public key.
// Usage: node verify-sigstore-js.cjs BUNDLE.json KEY.pub [ARTIFACT]
// Exit: 0 verified, 1 rejected, 2 usage or setup error.
'use strict';
const fs = require('fs');
const crypto = require('crypto');

let bundleFromJSON, Verifier, toSignedEntity, toTrustMaterial, createPublicKey;
try {
  ({ bundleFromJSON } = require('@sigstore/bundle'));
  ({ Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify'));
  ({ crypto: { createPublicKey } } = require('@sigstore/core'));
} catch (e) {
  console.error(`setup: ${e.message} (run scripts/install-interop-deps.sh)`);
  process.exit(2);
}

const [bundlePath, keyPath, artifactPath] = process.argv.slice(2);
if (!bundlePath || !keyPath) {
  console.error('usage: verify-sigstore-js.cjs BUNDLE KEY.pub [ARTIFACT]');
  process.exit(2);
}

const pem = fs.readFileSync(keyPath, 'utf8');
const keyObject = createPublicKey(pem); // a PEM string; a Buffer would be read as DER
const spki = crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' });
const ourHint = crypto.createHash('sha256').update(spki).digest('base64');

const emptyRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
};
const keyFinder = (hint) => {
  if (hint !== ourHint) {
    throw new Error(`no key for hint ${hint}`);
  }
  return { publicKey: keyObject, validFor: () => true };
};

try {
  const json = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
  const bundle = bundleFromJSON(json);
  const artifact = artifactPath ? fs.readFileSync(artifactPath) : undefined;
  const verifier = new Verifier(toTrustMaterial(emptyRoot, keyFinder), {
    tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle, artifact));
  // sigstore-js checks the DSSE signature; that the artifact is a subject is ours to check.
  if (artifact) {
    const digest = crypto.createHash('sha256').update(artifact).digest('hex');
    const statement = JSON.parse(Buffer.from(json.dsseEnvelope.payload, 'base64').toString('utf8'));
    if (!statement.subject.some((s) => s.digest && s.digest.sha256 === digest)) {
      throw new Error(`artifact sha256:${digest} is not a subject`);
    }
  }
  console.log('verified');
  process.exit(0);
} catch (e) {
  console.log(`rejected: ${e.code || ''} ${e.message}`);
  process.exit(1);
}

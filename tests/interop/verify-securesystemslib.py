#!/usr/bin/env python3
"""Verify the DSSE envelope of an agentgate bundle with securesystemslib, using the public key.

Usage: verify-securesystemslib.py BUNDLE.json KEY.pub
Exit: 0 verified, 1 rejected, 2 usage or setup error.
"""
import base64
import hashlib
import json
import sys

try:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey
except ImportError as e:  # pragma: no cover
    print(f"setup: {e} (run scripts/install-interop-deps.sh)", file=sys.stderr)
    sys.exit(2)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bundle_path, key_path = sys.argv[1:]
    with open(key_path, "rb") as f:
        pub = serialization.load_pem_public_key(f.read())
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    keyid = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    try:
        with open(bundle_path) as f:
            bundle = json.load(f)
        envelope = Envelope.from_dict(dict(bundle["dsseEnvelope"]))
        # securesystemslib only tries keys whose keyid equals the signature's keyid.
        key = SSlibKey.from_crypto(pub, keyid=keyid)
        envelope.verify([key], 1)
        if envelope.payload_type != "application/vnd.in-toto+json":
            raise ValueError(f"payload type {envelope.payload_type}")
        statement = json.loads(envelope.payload)
        if statement.get("_type") != "https://in-toto.io/Statement/v1":
            raise ValueError("not an in-toto Statement v1")
    except Exception as e:  # noqa: BLE001 - any failure is a rejection
        print(f"rejected: {type(e).__name__}: {e}")
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())

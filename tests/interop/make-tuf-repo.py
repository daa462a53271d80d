#!/usr/bin/env python3
"""Build a TUF repository that serves a Sigstore trusted root, with python-tuf (the reference
implementation), for tests/it/trust_root.rs: `agentgate trust-root update --tuf-url ... --tuf-root
DIR/root.json` must fetch it through TUF and refuse the broken variants.

usage: make-tuf-repo.py DIR TRUSTED_ROOT_JSON MODE
  MODE good      a fresh repository (root, timestamp, snapshot, targets signed, consistent
                 snapshots, the target under targets/<sha256>.trusted_root.json)
  MODE expired   the same, but the timestamp role expired yesterday
  MODE tampered  the same, but the served trusted_root.json is not the one the targets role
                 signed (one byte changed after signing)
  MODE rotated   root version 2 signed by the old and new root keys (a key rotation the client
                 must follow from the anchor 1.root.json)
  MODE rollback  the same keys published twice: version 2 of timestamp, snapshot and targets in
                 DIR/metadata/, version 1 (valid, unexpired) in DIR/old/metadata/ (what a
                 repository rolled back would serve)

Writes DIR/root.json (the anchor to give --tuf-root), DIR/metadata/ (served as the
repository's base URL) with its targets/ inside it.
"""

import hashlib
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer


def main() -> None:
    out, root_file, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    later = now + timedelta(days=30)
    meta_dir = out / "metadata"
    (meta_dir / "targets").mkdir(parents=True, exist_ok=True)
    ser = JSONSerializer(compact=False)

    signers = {role: CryptoSigner.generate_ecdsa() for role in ["root", "timestamp", "snapshot", "targets"]}
    root = Metadata(Root(expires=later, consistent_snapshot=True))
    for role, signer in signers.items():
        root.signed.add_key(signer.public_key, role)
    root.sign(signers["root"])
    root.to_file(str(out / "root.json"), ser)
    root.to_file(str(meta_dir / "1.root.json"), ser)

    if mode == "rotated":
        new_root_signer = CryptoSigner.generate_ecdsa()
        root.signed.revoke_key(signers["root"].public_key.keyid, "root")
        root.signed.add_key(new_root_signer.public_key, "root")
        root.signed.version = 2
        root.signatures.clear()
        root.sign(signers["root"], append=True)
        root.sign(new_root_signer, append=True)
        root.to_file(str(meta_dir / "2.root.json"), ser)

    data = root_file.read_bytes()
    expires = now - timedelta(days=1) if mode == "expired" else later
    if mode == "rollback":
        # The same repository twice: version 2 in metadata/, and version 1 in old/metadata/
        # (valid and unexpired, but older than what a client that saw version 2 trusts).
        old_dir = out / "old" / "metadata"
        (old_dir / "targets").mkdir(parents=True, exist_ok=True)
        root.to_file(str(old_dir / "1.root.json"), ser)
        publish(old_dir, 1, signers, data, later, tamper=False)
        publish(meta_dir, 2, signers, data, later, tamper=False)
    else:
        publish(meta_dir, 1, signers, data, expires, tamper=mode == "tampered")


def publish(meta_dir, version, signers, data, timestamp_expires, tamper):
    """Targets, snapshot and timestamp at `version`, serving `data` as trusted_root.json."""
    ser = JSONSerializer(compact=False)
    later = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    digest = hashlib.sha256(data).hexdigest()
    targets = Metadata(Targets(version=version, expires=later))
    targets.signed.targets["trusted_root.json"] = TargetFile.from_data("trusted_root.json", data, ["sha256"])
    targets.sign(signers["targets"])
    targets.to_file(str(meta_dir / f"{version}.targets.json"), ser)
    served = bytearray(data)
    if tamper:
        # Same length, one byte changed: only the hash can tell.
        i = served.index(b'"')
        served[i + 1] = ord("X") if served[i + 1] != ord("X") else ord("Y")
    (meta_dir / "targets" / f"{digest}.trusted_root.json").write_bytes(bytes(served))

    snapshot = Metadata(Snapshot(version=version, expires=later))
    snapshot.signed.meta["targets.json"] = MetaFile(version=version)
    snapshot.sign(signers["snapshot"])
    snapshot.to_file(str(meta_dir / f"{version}.snapshot.json"), ser)

    timestamp = Metadata(Timestamp(version=version, expires=timestamp_expires))
    timestamp.signed.snapshot_meta = MetaFile(version=version)
    timestamp.sign(signers["timestamp"])
    timestamp.to_file(str(meta_dir / "timestamp.json"), ser)

if __name__ == "__main__":
    main()

"""Why a key file did not load, in words, from what the file itself holds.

The SSH library's own reasons ("Valid PEM but no BEGIN/END delimiters", a cryptography URL) say
nothing an engineer can act on. The file says more: a public key, an OpenSSH or PEM private key,
encrypted or not. No library is imported here; nothing of the key's content is ever quoted.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

PASSPHRASE_ENV = "BATCHSYNC_SFTP_KEY_PASSPHRASE"
_PUBLIC_PREFIXES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def key_file_problem(path: Path, passphrase_given: bool) -> tuple[str, str]:
    """(message, hint) for a key file that would not load."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else type(exc).__name__
        return f"cannot read key_file {path}: {reason}", "check source.key_file and the file's permissions"
    text = data.decode("ascii", errors="replace").strip()
    if text.startswith(_PUBLIC_PREFIXES) or path.suffix == ".pub":
        private = path.with_suffix("") if path.suffix == ".pub" else path
        return (
            f"key_file {path} is a public key",
            f"give the private key instead (usually {private}); the server holds the public one",
        )
    encrypted = _encrypted(text)
    if encrypted is None:
        return (
            f"key_file {path} is not an SSH private key (expected OpenSSH or PEM format)",
            "point source.key_file at the private key file made by ssh-keygen",
        )
    if encrypted and not passphrase_given:
        return f"key_file {path} is protected by a passphrase", f"set {PASSPHRASE_ENV} in the job's environment"
    if encrypted:
        return (
            f"the passphrase in {PASSPHRASE_ENV} does not open key_file {path}",
            f"check {PASSPHRASE_ENV} (`ssh-keygen -y -f {path}` asks for it and shows whether it opens the key)",
        )
    return (
        f"key_file {path} is a private key of a type or format batchsync cannot use, or it is damaged",
        "use an Ed25519, ECDSA or RSA key (`ssh-keygen -t ed25519`), and give the server its .pub",
    )


def _encrypted(text: str) -> bool | None:
    """True/False for an OpenSSH or PEM private key, None for anything else."""
    if "-----BEGIN OPENSSH PRIVATE KEY-----" in text:
        body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
        try:
            blob = base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError):
            return None
        # openssh-key-v1\0, then the cipher's name as an SSH string: "none" for a plain key
        magic = b"openssh-key-v1\x00"
        if not blob.startswith(magic) or len(blob) < len(magic) + 4:
            return None
        size = int.from_bytes(blob[len(magic) : len(magic) + 4], "big")
        cipher = blob[len(magic) + 4 : len(magic) + 4 + size]
        return cipher != b"none"
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text:
        return True
    if "PRIVATE KEY-----" in text:
        return "Proc-Type: 4,ENCRYPTED" in text
    return None

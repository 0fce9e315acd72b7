"""What never enters the CMDB: credentials, by name or by shape."""

from __future__ import annotations

import re

# Attribute names (any nesting, compared case-insensitively without ``_``/``-``) whose values
# are never stored even when an allowlist would admit them: tags and renamed fields included.
_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "privatekey",
    "token",
    "accesskey",
    "apikey",
    "credential",
    "connectionstring",
    "certificate",
    "sasl",
    "auth",
    "kubeconfig",
    "userdata",
    "customdata",
)
# A value that looks like a credential whatever its key is called.
SECRET_VALUE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b")


def is_secret_name(name: str) -> bool:
    """True for attribute names that hold credentials (``db_password``, ``PrivateKey``...)."""
    squashed = re.sub(r"[_\-. ]", "", name.lower())
    return any(word in squashed for word in _SECRET_WORDS)


# Broader than ``is_secret_name``: env vars and keys whose values are not even scanned for
# host names (``REDIS_PASSWORD=redis://…`` must not leak through a relationship's ``via``).
CREDENTIAL_NAME = re.compile(r"pass|secret|token|key|credential|auth|private|cert|salt", re.I)

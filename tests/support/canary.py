"""Whether a secret can be read back from a text, in any form a leak takes (plain, URL-encoded, base64)."""

import base64
import re
from urllib.parse import quote


def carries(text: str, secret: str) -> bool:
    """Whether `secret` can be read back from `text`: as it is, URL-decoded, or decoded from any base64 run (either
    alphabet, any start), wherever it sat in the encoded bytes."""
    if secret in text or quote(secret, safe="") in text:
        return True
    for run in re.findall(r"[A-Za-z0-9+/_\-=]{8,}", text):
        for start in range(4):
            chunk = run[start:].rstrip("=")
            chunk = chunk[: len(chunk) // 4 * 4]
            for altchars in (b"+/", b"-_"):
                try:
                    decoded = base64.b64decode(chunk, altchars=altchars, validate=True)
                except ValueError:
                    continue
                if secret.encode() in decoded:
                    return True
    return False

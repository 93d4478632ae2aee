"""Prepares a running `mandat serve` for the `oidc-load` driver of ../shared/peers/: an
organisation, an aidant logged in (its session cookie), N usagers with an active `social`
mandate (their ids, one per line), and the driver's client (`mandat client create`).

usage: python3 bench/peers/mandat_setup.py MANDAT_BIN BASE_URL OUT_DIR [N]
(MANDAT_* variables of the server, e.g. MANDAT_DATABASE_URL, in the environment.)
Writes OUT_DIR/mandates.txt and prints one JSON line: client_id, client_secret, cookie.
"""

import base64
import hashlib
import hmac
import json
import struct
import subprocess
import sys
import time
import urllib.request

PASSWORD = "lampe orange tortue 77"


def totp(secret: str, at: float) -> str:
    key = base64.b32decode(secret.replace(" ", "").upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o : o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def call(base, method, path, body=None, cookie=None):
    req = urllib.request.Request(base + path, method=method)
    req.add_header("Content-Type", "application/json")
    if cookie:
        req.add_header("Cookie", cookie)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data, timeout=30) as r:
        return r.headers, json.loads(r.read() or b"{}")


def main() -> int:
    mandat, base, out = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    run = lambda *a, stdin=None: json.loads(
        subprocess.run([mandat, *a], input=stdin, capture_output=True, text=True, check=True).stdout
    )
    org = run("org", "create", "--name", "Banc comparatif", "--address", "1 rue du Banc")["id"]
    email = "aidant-%d@bench.example" % int(time.time())
    user = run("user", "create", "--email", email, "--name", "Aidant de banc", "--org", org,
               "--role", "aidant", "--password-stdin", stdin=PASSWORD)
    client = run("client", "create", "--name", "oidc-load", "--redirect-uri", "http://127.0.0.1:9/callback")
    headers, _ = call(base, "POST", "/api/v1/session",
                      {"email": email, "password": PASSWORD, "totp": totp(user["totp_secret"], time.time())})
    cookie = headers["Set-Cookie"].split(";")[0]
    ids = []
    for i in range(n):
        _, u = call(base, "POST", "/api/v1/usagers",
                    {"given_name": "Marie", "family_name": "Banc%d" % i, "birthdate": "1950-04-12",
                     "identity_check": "document"}, cookie)
        _, m = call(base, "POST", "/api/v1/mandates",
                    {"usager_id": u["id"], "demarches": ["social"], "duration": "long",
                     "consent_channel": "print"}, cookie)
        call(base, "POST", "/api/v1/mandates/%s/consent" % m["id"], {"code": m["consent"]["code"]}, cookie)
        ids.append(m["id"])
    with open(out + "/mandates.txt", "w") as f:
        f.write("\n".join(ids) + "\n")
    print(json.dumps({"client_id": client["client_id"], "client_secret": client["client_secret"],
                      "cookie": cookie}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A Python relying party (authlib) against mandat's OpenID Connect provider.

Run by tests/api/oidc_authlib.rs with a JSON argument: issuer, client_id, client_secret,
redirect_uri, the aidant's session cookie, login_hint and `now` (the server's clock, for the
token's time checks). Prints one JSON line with what it verified; exits non-zero on failure.
"""

import json
import sys
from urllib.parse import parse_qs, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def main() -> int:
    cfg = json.loads(sys.argv[1])
    issuer = cfg["issuer"]
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer, meta["issuer"]
    session = OAuth2Session(
        cfg["client_id"],
        cfg["client_secret"],
        scope="openid profile demarche:social",
        redirect_uri=cfg["redirect_uri"],
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    from authlib.common.security import generate_token

    code_verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = session.create_authorization_url(
        meta["authorization_endpoint"],
        code_verifier=code_verifier,
        nonce=nonce,
        login_hint=cfg["login_hint"],
    )
    # The aidant's browser, already logged in: the provider answers with the redirect.
    r = requests.get(url, headers={"Cookie": cfg["cookie"]}, allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303), (r.status_code, r.text[:500])
    location = r.headers["Location"]
    q = parse_qs(urlparse(location).query)
    assert q["state"] == [state], q
    token = session.fetch_token(
        meta["token_endpoint"],
        authorization_response=location,
        code_verifier=code_verifier,
    )
    assert token["token_type"].lower() == "bearer"
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={"nonce": nonce, "client_id": cfg["client_id"]},
    )
    claims.validate(now=cfg["now"])
    header = json.loads(
        __import__("base64").urlsafe_b64decode(token["id_token"].split(".")[0] + "==")
    )
    assert header["alg"] == "ES256", header
    assert claims["mandate"]["demarche"] == "social", claims
    assert "organisation" in claims["act"], claims
    info = session.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"], (info, claims)
    print(
        json.dumps(
            {
                "ok": True,
                "sub": claims["sub"],
                "alg": header["alg"],
                "mandate": claims["mandate"]["id"],
                "given_name": info.get("given_name") is not None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

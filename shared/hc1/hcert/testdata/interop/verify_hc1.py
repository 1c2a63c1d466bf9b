#!/usr/bin/env python3
"""Independent HC1 verifier for vaxpass interop tests (not our Go code).

Usage: verify_hc1.py DSC.pem INPUTS.json
INPUTS.json: [{"name": str, "hc1": str, "now": unix seconds}, ...]
Prints one JSON object per input on stdout:
  {"name", "decoded", "kid_matches", "signature_valid", "expired",
   "not_yet_valid", "iss", "iat", "exp", "dcc", "error"}

Uses PyPI pycose, cbor2, base45 and zlib: decode the prefix, Base45, zlib and
COSE_Sign1, check kid == SHA-256(DSC DER)[0:8], verify the signature with the
DSC's public key and compare exp/iat with the given time.
"""
import hashlib
import json
import sys
import zlib

import base45
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pycose import headers
from pycose.keys import CoseKey
from pycose.messages import Sign1Message


def load_dsc(path):
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_bytes(serialization.Encoding.DER)
    kid = hashlib.sha256(der).digest()[:8]
    pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return kid, pem


def check(item, kid, pem):
    out = {"name": item["name"], "decoded": False, "kid_matches": False,
           "signature_valid": False, "expired": None, "not_yet_valid": None,
           "iss": None, "iat": None, "exp": None, "dcc": None, "error": None}
    try:
        hc1 = item["hc1"]
        if not hc1.startswith("HC1:"):
            raise ValueError("missing HC1: prefix")
        cose = zlib.decompress(base45.b45decode(hc1[4:]))
        msg = Sign1Message.decode(cose)
        claims = cbor2.loads(msg.payload)
        out["decoded"] = True
        out["iss"], out["iat"], out["exp"] = claims.get(1), claims.get(6), claims.get(4)
        out["dcc"] = claims[-260][1]
        given_kid = msg.phdr.get(headers.KID) or msg.uhdr.get(headers.KID)
        out["kid_matches"] = given_kid == kid
        msg.key = CoseKey.from_pem_public_key(pem)
        try:
            out["signature_valid"] = bool(msg.verify_signature())
        except Exception as e:  # pycose raises on some malformed signatures
            out["error"] = "verify: %s" % e
        now = item["now"]
        out["expired"] = now > out["exp"]
        out["not_yet_valid"] = now < out["iat"]
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    kid, pem = load_dsc(sys.argv[1])
    with open(sys.argv[2]) as f:
        items = json.load(f)
    for item in items:
        print(json.dumps(check(item, kid, pem), ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()

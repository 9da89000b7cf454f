#!/usr/bin/env python3
"""Create a blob container on Azurite using SharedKey auth (stdlib only).
usage: azurite_mkcontainer.py http://127.0.0.1:10000 container"""
import base64, hashlib, hmac, sys, urllib.request, urllib.error
from email.utils import formatdate

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
base, container = sys.argv[1].rstrip("/"), sys.argv[2]
date, ver = formatdate(usegmt=True), "2021-08-06"
# string-to-sign: VERB + 11 standard headers (all empty here) + canonical headers + canonical resource
sts = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{ver}\n" + \
      f"/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"{base}/{ACCOUNT}/{container}?restype=container", method="PUT",
      headers={"x-ms-date": date, "x-ms-version": ver, "Authorization": f"SharedKey {ACCOUNT}:{sig}",
               "Content-Length": "0"})
try:
    print(urllib.request.urlopen(req).status)
except urllib.error.HTTPError as e:
    if e.code == 409:
        print("409 exists"); sys.exit(0)
    print(e.code, e.read().decode()[:500]); sys.exit(1)

#!/usr/bin/env python3
"""The obvious Python extractor most teams write: simple-salesforce + pyarrow.

Token by client credentials, `query_all_iter` over the whole object (queryAll, paged with
nextRecordsUrl by simple-salesforce), records collected 50,000 at a time, each batch turned
into an Arrow table with `pa.Table.from_pylist` and appended to one ZSTD Parquet file.

The only adaptations to the emulator: simple-salesforce always builds `https://` URLs and the
emulator speaks plain HTTP on 127.0.0.1, so the session rewrites the scheme; and it asks for
uncompressed pages, as the forcelake run it is compared with does (no gzip on loopback).

usage: python_simple_salesforce.py BASE_URL OBJECT FIELD,FIELD,... OUT.parquet
Prints one JSON line: {"records": N, "bytes": B}.
"""
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from simple_salesforce import Salesforce

base, obj, fields, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
tok = requests.post(base + "/services/oauth2/token", data={
    "grant_type": "client_credentials", "client_id": "forcelake-demo-client", "client_secret": "forcelake-demo-secret"}).json()


class Loopback(requests.Session):
    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://", "http://", 1), *args, **kwargs)


session = Loopback()
session.headers["Accept-Encoding"] = "identity"
nbytes = 0


def count(resp, *args, **kwargs):
    global nbytes
    nbytes += len(resp.content)


session.hooks["response"].append(count)
sf = Salesforce(instance_url=tok["instance_url"], session_id=tok["access_token"], session=session, version="62.0")

writer = None
records = 0
rows = []


def flush():
    global writer, rows
    table = pa.Table.from_pylist(rows)
    if writer is None:
        writer = pq.ParquetWriter(out, table.schema, compression="zstd")
    writer.write_table(table.cast(writer.schema, safe=False))
    rows = []


for rec in sf.query_all_iter(f"SELECT {fields} FROM {obj}", include_deleted=True):
    rec.pop("attributes", None)
    rows.append(rec)
    records += 1
    if len(rows) == 50_000:
        flush()
if rows:
    flush()
if writer:
    writer.close()
print(json.dumps({"records": records, "bytes": nbytes}))

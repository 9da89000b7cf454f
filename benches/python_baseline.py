#!/usr/bin/env python3
"""The obvious Python extractor, for comparison: plain HTTP (urllib) + json + pyarrow.

Token by client credentials, one `queryAll` over the whole object paged with
nextRecordsUrl, each page turned into an Arrow table with pyarrow and appended to one ZSTD
Parquet file. usage: python_baseline.py BASE_URL OBJECT FIELD,FIELD,... OUT.parquet
Prints one JSON line: {"records": N, "bytes": B}.
"""
import json
import sys
import urllib.parse
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq

base, obj, fields, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "forcelake-demo-client", "client_secret": "forcelake-demo-secret"}).encode()
req = urllib.request.Request(base + "/services/oauth2/token", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
token = json.load(urllib.request.urlopen(req))["access_token"]
headers = {"Authorization": "Bearer " + token, "Sforce-Query-Options": "batchSize=2000"}
url = base + "/services/data/v62.0/queryAll?q=" + urllib.parse.quote(f"SELECT {fields} FROM {obj}")
writer = None
records = 0
nbytes = 0
while url:
    raw = urllib.request.urlopen(urllib.request.Request(url, headers=headers)).read()
    nbytes += len(raw)
    page = json.loads(raw)
    rows = page["records"]
    for r in rows:
        r.pop("attributes", None)
    table = pa.Table.from_pylist(rows)
    if writer is None:
        schema = table.schema
        writer = pq.ParquetWriter(out, schema, compression="zstd")
    writer.write_table(table.cast(schema, safe=False))
    records += len(rows)
    nxt = page.get("nextRecordsUrl")
    url = base + nxt if nxt and not page.get("done") else None
if writer:
    writer.close()
print(json.dumps({"records": records, "bytes": nbytes}))

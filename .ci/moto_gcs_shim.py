"""moto S3 server (single-threaded) + a tiny WSGI shim that maps the GCS XML-API headers object_store's
GCS client sends onto their S3 equivalents, so object_store's GCS code path can run against moto.
usage: python moto_gcs_shim.py HOST PORT
  x-goog-copy-source            -> x-amz-copy-source
  x-goog-if-generation-match: 0 -> If-None-Match: *
  x-goog-if-generation-match: G -> If-Match: "G"         (G is the S3 ETag, see below)
  response ETag "E"             -> also x-goog-generation: E   (so PutResult/ObjectMeta carry a 'version')
  copy + x-goog-if-generation-match: 0 on an existing target -> 412 (moto ignores copy preconditions)
  404 on a generation-match request -> 412 (what GCS answers)
  Authorization: Bearer ...     -> a dummy SigV4 header (moto does not verify signatures)
  %2D %2E %5F %7E in the bucket segment of GCS requests -> decoded (moto keeps them encoded)
"""
import os, re, sys, signal
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

_UNRESERVED = re.compile(r"%(2[DdEe]|5[Ff]|7[Ee])")   # - . _ ~

class GcsXmlShim:
    def __init__(self, app):
        self.app = app
    def __call__(self, environ, start_response):
        if environ.get("HTTP_AUTHORIZATION", "Bearer").startswith("Bearer"):
            # object_store's GCS client percent-encodes unreserved characters in the bucket name too
            # ("gcs-test" -> "gcs%2Dtest"); moto takes the bucket from the raw URI and does not decode it
            for k in ("RAW_URI", "REQUEST_URI"):
                if k in environ:
                    environ[k] = re.sub(r"^(/[^/?]*)", lambda m: _UNRESERVED.sub(lambda e: chr(int(e.group(1), 16)), m.group(1)), environ[k])
            # moto parses Authorization as SigV4 (500 on an empty bearer) and treats requests without it
            # as anonymous (403 on reads); give it a well-formed, unverified SigV4 header instead
            environ["HTTP_AUTHORIZATION"] = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
                                             "SignedHeaders=host, Signature=0")
        src = environ.pop("HTTP_X_GOOG_COPY_SOURCE", None)
        if src:
            environ["HTTP_X_AMZ_COPY_SOURCE"] = src
        gen = environ.pop("HTTP_X_GOOG_IF_GENERATION_MATCH", None)
        if src and gen == "0" and self._exists(environ):
            # copy-if-not-exists: moto ignores preconditions on CopyObject; the server is
            # single-threaded, so check-then-copy is atomic here.
            start_response("412 Precondition Failed", [("Content-Type", "application/xml")])
            return [b"<Error><Code>PreconditionFailed</Code></Error>"]
        if gen is not None:
            if gen == "0":
                environ["HTTP_IF_NONE_MATCH"] = "*"
            else:
                environ["HTTP_IF_MATCH"] = '"%s"' % gen
        def sr(status, headers, exc_info=None):
            if gen not in (None, "0") and status.startswith("404"):
                status = "412 Precondition Failed"   # GCS answers 412 for a generation match on a missing object
            etag = next((v for k, v in headers if k.lower() == "etag"), None)
            if etag:
                headers = list(headers) + [("x-goog-generation", etag.strip('"'))]
            return start_response(status, headers, exc_info)
        return self.app(environ, sr)

    def _exists(self, environ):
        head = {k: v for k, v in environ.items() if not k.startswith("HTTP_X_AMZ_COPY")}
        head["REQUEST_METHOD"] = "HEAD"
        head["CONTENT_LENGTH"] = "0"
        head["QUERY_STRING"] = ""
        seen = []
        body = self.app(head, lambda st, h, e=None: seen.append(st))
        for _ in body:
            pass
        return bool(seen) and seen[0].startswith("200")

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
run_simple(host, port, GcsXmlShim(DomainDispatcherApplication(create_backend_app)), threaded=False,
           request_handler=MotoRequestHandler)

# SPDX-License-Identifier: MIT OR Apache-2.0
"""A fault-injecting HTTP proxy in front of the test's S3 server, on
127.0.0.1 only.

usage: s3proxy.py PORT_FILE LOG_FILE MODE_FILE UPSTREAM_PORT

Writes its port to PORT_FILE. Every request is forwarded unchanged (the
Host header too, so SigV4 signatures still verify) to 127.0.0.1:UPSTREAM_PORT
unless MODE_FILE says otherwise, read at each request:
  pass                 forward everything
  fail-all             answer 503 to everything
  fail-parts-from:N    answer 503 to UploadPart requests with partNumber >= N
  deny-parts-from:N    answer 403 to UploadPart requests with partNumber >= N
  deny-path:TEXT       answer 403 to requests whose path contains TEXT
Each request is logged as one JSON line in LOG_FILE:
{"method", "path", "query", "status"} (status: what the client got).
"""
import http.client
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file, mode_file, upstream = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def mode():
    try:
        with open(mode_file) as f:
            return f.read().strip()
    except OSError:
        return "pass"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length) if length else b""
        m = mode()
        fail = 503 if m == "fail-all" else None
        if m.split(":")[0] in ("fail-parts-from", "deny-parts-from") and "partNumber" in query:
            if int(query["partNumber"][0]) >= int(m.split(":")[1]):
                fail = 503 if m.startswith("fail") else 403
        if m.startswith("deny-path:") and m.split(":", 1)[1] in url.path:
            fail = 403
        if fail:
            code = b"SlowDown" if fail == 503 else b"AccessDenied"
            status, headers, data = fail, [("content-type", "application/xml")], b"<Error><Code>" + code + b"</Code></Error>"
        else:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    conn.putheader(k, v)
                conn.endheaders()
                if body:
                    conn.send(body)
                resp = conn.getresponse()
                status, data = resp.status, resp.read()
                headers = [(k, v) for k, v in resp.getheaders()
                           if k.lower() not in ("transfer-encoding", "connection", "content-length")]
                conn.close()
            except OSError as e:
                status, headers, data = 502, [], str(e).encode()
        with open(log_file, "a") as f:
            f.write(json.dumps({"method": self.command, "path": url.path,
                                "query": {k: v[0] for k, v in query.items()},
                                "status": status}) + "\n")
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()

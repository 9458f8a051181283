# SPDX-License-Identifier: MIT OR Apache-2.0
"""A recording-callback receiver for the tests, on 127.0.0.1 only.

usage: receiver.py PORT_FILE LOG_FILE FAIL_FIRST [PORT]

Writes its port to PORT_FILE, then logs every POST as one JSON line in
LOG_FILE: {"n", "headers", "body", "outcome"}. The first FAIL_FIRST
requests fail: odd ones with HTTP 500, even ones by closing the connection
without an answer. The rest get 200.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file, fail_first = sys.argv[1], sys.argv[2], int(sys.argv[3])
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
count = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        count += 1
        n = count
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        if n <= fail_first and n % 2 == 1:
            outcome = "500"
        elif n <= fail_first:
            outcome = "dropped"
        else:
            outcome = "200"
        with open(log_file, "a") as f:
            f.write(json.dumps({"n": n, "headers": dict(self.headers), "body": body,
                                "outcome": outcome}) + "\n")
        if outcome == "dropped":
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(int(outcome))
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()

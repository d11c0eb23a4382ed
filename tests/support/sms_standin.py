#!/usr/bin/env python3
"""A stand-in for Alibaba Cloud's SMS API (SendSms) for the tests. It checks each request's
signature as the service documents it -- its own implementation, with the AccessKey it is given
-- and answers as the service does; each text it accepts is written as one JSON line.

  sms_standin.py --port P --key-id ID --secret S --out FILE [--reject NUMBER ...]

Prints "ready" once it listens.
"""

import argparse
import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def encode(text):
    return urllib.parse.quote(text, safe="-_.~")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--reject", action="append", default=[])
    args = parser.parse_args()
    out = open(args.out, "a", encoding="utf-8")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            params = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            signature = params.pop("Signature", "")
            query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
            to_sign = "POST&" + encode("/") + "&" + encode(query)
            digest = hmac.new((args.secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
            if params.get("AccessKeyId") != args.key_id or signature != base64.b64encode(digest).decode():
                return self.answer(400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched with our calculation."})
            if params.get("Action") != "SendSms" or params.get("Version") != "2017-05-25":
                return self.answer(400, {"Code": "InvalidAction", "Message": "unknown action"})
            if params.get("PhoneNumbers") in args.reject:
                return self.answer(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid mobile number"})
            record = {
                "to": params.get("PhoneNumbers"),
                "sign": params.get("SignName"),
                "template": params.get("TemplateCode"),
                "params": json.loads(params.get("TemplateParam") or "{}"),
            }
            with lock:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
            self.answer(200, {"Code": "OK", "Message": "OK", "BizId": uuid.uuid4().hex[:20], "RequestId": str(uuid.uuid4())})

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A real SMTP server for the tests (aiosmtpd): every message it accepts is written as one JSON
line -- envelope, decoded subject, headers and body -- so a test reads what a recipient would.

  smtp_sink.py --port P --out FILE [--defer N] [--reject ADDRESS ...]

--defer N answers the first N messages with 451 (try again later); --reject refuses a
recipient with 550. Prints "ready" once it listens.
"""

import argparse
import email
import json
import threading
from email import policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, defer, reject):
        self.out = open(out, "a", encoding="utf-8")
        self.defer = defer
        self.reject = set(reject)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.defer > 0:
                self.defer -= 1
                return "451 4.3.0 busy, try again later"
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("html", "plain"))
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"] or ""),
            "message_id": str(message["message-id"] or ""),
            "headers": {name.lower(): str(value) for name, value in message.items()},
            "body": body.get_content() if body is not None else "",
        }
        with self.lock:
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.out.flush()
        return "250 2.0.0 queued as %d" % (abs(hash(record["message_id"])) % 10**8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--defer", type=int, default=0)
    parser.add_argument("--reject", action="append", default=[])
    args = parser.parse_args()
    controller = Controller(Sink(args.out, args.defer, args.reject), hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

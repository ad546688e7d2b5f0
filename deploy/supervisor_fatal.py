#!/usr/bin/env python3
"""supervisord event listener: a program that went FATAL stops supervisord.

supervisord gives up on a program that keeps dying at start (FATAL) and then
carries on without it: a container with no worker (or no web) that still looks
alive. This listener stops supervisord instead, so the container exits and the
platform restarts it. Before that it writes a line to THE_FLIP_FATAL_FILE (when
set): docker/entrypoint reads it and exits 1 rather than supervisord's 0.

    [eventlistener:fatal]
    command=python deploy/supervisor_fatal.py
    events=PROCESS_STATE_FATAL

Standard library only; speaks the listener protocol on stdin/stdout and logs
to stderr.
"""

import os
import signal
import sys


def parse_header(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split())


def main() -> int:
    fatal_file = os.environ.get("THE_FLIP_FATAL_FILE", "")
    supervisord_pid = os.getppid()
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:  # supervisord went away
            return 0
        header = parse_header(line)
        payload = sys.stdin.read(int(header.get("len", "0")))
        if header.get("eventname") == "PROCESS_STATE_FATAL":
            body = parse_header(payload.split("\n", 1)[0])
            name = body.get("processname", "?")
            message = f"program {name} went FATAL (it could not stay up)"
            print(f"supervisor_fatal: {message}; stopping supervisord", file=sys.stderr, flush=True)
            if fatal_file:
                try:
                    with open(fatal_file, "w") as f:
                        f.write(message + "\n")
                except OSError as error:
                    print(f"supervisor_fatal: cannot write {fatal_file}: {error}", file=sys.stderr)
            os.kill(supervisord_pid, signal.SIGTERM)
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

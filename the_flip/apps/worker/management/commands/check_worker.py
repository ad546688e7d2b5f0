"""Is the worker healthy? Prints the last day's outcomes, the queue and anything stuck.

Exit 0 when healthy; 1 when something is wrong (each problem printed); 2 when the database
cannot be reached. Meant for people and for cron/uptime checks alike. The bucket's system
check does not run first: a file store that does not answer is one of the things this
reports ("storage: unreachable"), not a reason to stop before the report."""

import json
import sys

from django.core.management.base import BaseCommand

from the_flip.apps.worker.health import full_report
from the_flip.storage import SkipsStorageCheck


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Command(SkipsStorageCheck, BaseCommand):
    help = "Check the video worker: recent outcomes, queue, stuck videos. Exit 0 when healthy."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options) -> None:
        try:
            problems, facts = full_report()
        except Exception as exc:
            self.stderr.write(f"UNHEALTHY: the database cannot be reached: {exc}")
            sys.exit(2)
        if options["json"]:
            body = {"status": "error" if problems else "ok", "problems": problems, **facts}
            self.stdout.write(json.dumps(body, indent=2, default=str))
            sys.exit(1 if problems else 0)
        out = self.stdout.write
        out(f"worker heartbeat:     {_age(facts['worker_heartbeat_age'])} ago")
        out(f"workers alive:        {facts['workers_alive']}")
        out(f"storage:              {facts['storage']}")
        out(f"succeeded (24 h):     {facts['succeeded_24h']}")
        out(f"failed (24 h):        {facts['failed_24h']}")
        latest = facts["latest_failure"]
        if latest:
            out(f"latest failure:       video {latest['media']} at {latest['at']}:")
            out(f"                      {latest['reason']}")
        out(f"queue length:         {facts['queue_length']}")
        out(f"oldest queued task:   {_age(facts['oldest_queued_age'])}")
        out(f"stuck videos (>{_age(facts['stuck_after_seconds'])}): {facts['stuck_videos']}")
        for item in facts["stuck"]:
            out(f"  video {item['media']}: {item['status']} since {item['since']}")
        out(f"waiting videos:       {facts['waiting_videos']} (pending behind a busy worker)")
        megabytes = facts["partial_upload_bytes"] / (1024 * 1024)
        out(f"partial uploads:      {facts['partial_uploads']} holding {megabytes:.1f} MB")
        if facts["chore_failures_24h"]:
            out(f"failed chores (24 h): {facts['chore_failures_24h']} (see admin: Task records)")
        if problems:
            for problem in problems:
                self.stderr.write(f"UNHEALTHY: {problem}")
            sys.exit(1)
        out(self.style.SUCCESS("OK: the worker is healthy."))

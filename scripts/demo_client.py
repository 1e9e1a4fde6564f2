#!/usr/bin/env python3
"""The client of `make demo` (scripts/demo.sh): asks the guest's web
service over and over and prints each answer with a timestamp.

    scripts/demo_client.py URL [INTERVAL [SUMMARY_FILE]]

Every INTERVAL seconds (0.5) one HTTP GET on a new connection, 3 s timeout
(TCP sends a lost packet again after 1 s: a packet lost while the VM
switches hosts shows as a late answer, not a missing one); a line per
request: `client HH:MM:SS.mmm  <answer>`, with how long it took when that
was over 0.3 s, or `(no answer: why)`.  The answer's "up N s" (the guest's
uptime) must never go back: an answer where it does is marked.

On a terminal each line starts by erasing the current line, so a progress
bar another process redraws there (`godwit migrate`) stays below the
answers instead of being cut in two.  On SIGTERM or SIGINT it prints a
summary (answers, failures, the longest time between two answers) and exits
0; with SUMMARY_FILE it also writes there `ANSWERS FAILURES LONGEST_GAP_S
BACKWARDS` (BACKWARDS: answers whose uptime was below an earlier one's).
"""
import re
import signal
import sys
import time
import urllib.request

URL = sys.argv[1]
INTERVAL = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
SUMMARY = sys.argv[3] if len(sys.argv) > 3 else None
TTY = sys.stdout.isatty()
CLEAR = "\r\033[K" if TTY else ""
BOLD, PLAIN = ("\033[1m", "\033[0m") if TTY else ("", "")

answers = failures = backwards = 0
uptime = 0.0  # the highest uptime the guest reported
last_ok = None  # monotonic time of the last answer
longest = (0.0, "")  # the longest time between two answers, and when it ended


def out(line):
    sys.stdout.write(f"{CLEAR}{line}\n")  # one write: lines never mix with others
    sys.stdout.flush()


def summary(*_):
    gap, when = longest
    text = (f"client: {answers} answers, {failures} requests without an answer; "
            f"longest time between two answers: {gap:.2f} s")
    if backwards:
        text += f"; the guest's uptime went back {backwards} times (a reboot?)"
    if when:
        text += f" (ending {when})"
    out(f"{BOLD}{text}{PLAIN}  [one request every {INTERVAL:g} s]")
    if SUMMARY:
        with open(SUMMARY, "w") as f:
            f.write(f"{answers} {failures} {gap:.2f} {backwards}\n")
    sys.exit(0)


signal.signal(signal.SIGTERM, summary)
signal.signal(signal.SIGINT, summary)

while True:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(URL, timeout=3) as r:
            text = r.read().decode("utf-8", "replace").strip()
        ok = True
    except Exception as e:  # noqa: BLE001 - any failure is "no answer"
        text = f"(no answer: {getattr(e, 'reason', e)})"
        ok = False
    now = time.monotonic()
    wall = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"
    if ok:
        answers += 1
        m = re.search(r"up ([0-9.]+)s", text)
        if m and float(m.group(1)) < uptime:
            backwards += 1
            text += "   (uptime went BACK)"
        elif m:
            uptime = float(m.group(1))
        if last_ok is not None and now - last_ok > longest[0]:
            longest = (now - last_ok, stamp)
        last_ok = now
    else:
        failures += 1
    took = now - start
    late = f"   (this answer took {took:.2f} s)" if ok and took > 0.3 else ""
    out(f"client {stamp}  {text}{late}")
    time.sleep(max(0.0, INTERVAL - (time.monotonic() - start)))

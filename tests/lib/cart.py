#!/usr/bin/env python3
"""The shopping-cart client (issue 15): one TCP session to a redis server
that adds an item every 5 ms and reads the cart back, recording when every
request left and when its answer came (stdlib only, RESP by hand).

    from cart import Cart, figures
    c = Cart("10.77.0.101", 6379)          # cart:<session>, a fresh session name
    c.start()                              # a thread; or c.run(stop_event)
    ...                                    # migrate the server meanwhile
    c.stop()
    res = c.final_check()                  # the whole cart against the acks
    assert res["ok"], res["problems"]
    hop = figures(c.records, t0, t1)       # one time window (time.monotonic())

or, in another network namespace, as a program writing its status (JSON,
atomically, every 0.25 s and once more at the end):

    python3 tests/lib/cart.py HOST PORT STATUSFILE [--session S] [--duration SEC]

SIGTERM or SIGINT (or --duration) stops it: it then runs final_check()
and writes the status with "final" (the check) and "records" (every
request).  `python3 tests/lib/cart.py --self-test` checks the checks on
made-up carts (self_test() for a test).

What it does: `RPUSH cart:<session> <n>` with n = 1, 2, 3, ... one request
at a time on the one connection, the next leaving 5 ms after the previous
one left (at once if the answer took longer); the integer reply is the
list's length, the acknowledgement, and must equal n while nothing went
wrong (the list holds exactly 1..n). Every 200 ms `LRANGE cart:<session>
FROM -1` reads what was added since the last read (reading the whole cart
every time would cost the server, an emulated CPU, more as the cart grows:
36,000 items after 3 minutes) and checks it goes on from the last item
checked, one by one; final_check() reads the whole cart once at the end.

Every request is recorded as [kind, n, sent, acked, retrans, error]: kind
"push" or "read", sent and acked time.monotonic() (acked None when no
answer came; CLOCK_MONOTONIC is one clock for every process and network
namespace, so a caller can match its own times), retrans the client's
retransmitted segments so far after the answer (tcpi_total_retrans of
Linux's struct tcp_info, added up over the connections: cumulative; a
retransmission across a migration means a frame was lost), error None or
one of:
  reset        the connection closed or reset (EOF, ECONNRESET, EPIPE, ...)
  timeout      no answer within 5 s
  wrong-reply  an answer that is not the expected one (a push acknowledged
               with another length, an error reply, bad RESP)
  cart         a read that does not go on 1, 2, 3, ... as acknowledged
  connect      a new connection failed (after one of the above)
After reset, timeout or wrong-reply the connection is dropped and a new one
made (the push in flight then may or may not be in the cart: final_check()
accepts either, never twice).
"""

import argparse
import json
import math
import os
import signal
import socket
import struct
import sys
import threading
import time
import uuid

INTERVAL = 0.005  # seconds between pushes
READ_EVERY = 0.2  # seconds between reads of the cart
TIMEOUT = 5.0  # seconds without an answer: an error
TCP_INFO_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info
TCP_INFO_RTT = 68  # tcpi_rtt, microseconds


class RespError(Exception):
    """A reply that is not RESP as redis speaks it."""


def encode(*args):
    """A RESP array of bulk strings: a redis command."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Reader:
    """RESP replies from a socket (buffered; socket.timeout and OSError go
    through, EOF is ConnectionResetError)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self.buf += data

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > 1 << 20:
                raise RespError("a reply line over 1 MiB")
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = bytes(self.buf[:n])
        if self.buf[n:n + 2] != b"\r\n":
            raise RespError("a bulk string without its CRLF")
        del self.buf[:n + 2]
        return data

    def reply(self):
        """One reply: int, bytes, str (simple string), list, None, or
        RespError for an error reply ("-ERR ...") returned, not raised."""
        line = self._line()
        if not line:
            raise RespError("an empty reply line")
        kind, rest = line[:1], line[1:]
        try:
            if kind == b":":
                return int(rest)
            if kind == b"+":
                return rest.decode()
            if kind == b"-":
                return RespError(rest.decode(errors="replace"))
            if kind == b"$":
                n = int(rest)
                return None if n < 0 else self._exact(n)
            if kind == b"*":
                n = int(rest)
                return None if n < 0 else [self.reply() for _ in range(n)]
        except ValueError:
            raise RespError(f"a bad length in {line[:40]!r}") from None
        raise RespError(f"an unknown reply type {line[:40]!r}")


def tcp_info(sock):
    """(tcpi_total_retrans, tcpi_rtt in µs) of a connected TCP socket, or
    (None, None) when the kernel does not say."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    except OSError:
        return None, None
    if len(raw) < TCP_INFO_TOTAL_RETRANS + 4:
        return None, None
    return (struct.unpack_from("<I", raw, TCP_INFO_TOTAL_RETRANS)[0],
            struct.unpack_from("<I", raw, TCP_INFO_RTT)[0])


def percentile(values, p):
    """The p-th percentile (nearest rank) of values, None if empty."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))]


def figures(records, t0=None, t1=None):
    """The figures of the requests sent in [t0, t1) (monotonic seconds;
    None: unbounded): counts, errors by kind, latency p50/p99/max (ms, of
    answered requests), the longest pause any request saw (ms: its wait for
    an answer, or up to the end of the window when none came; max_pause_at
    is when that request left, monotonic seconds), the longest
    time without any answer (ms), and the retransmissions counted over the
    window (the last answer's tcpi_total_retrans minus that before it)."""
    sel = [r for r in records if (t0 is None or r[2] >= t0) and (t1 is None or r[2] < t1)]
    lat = [(r[3] - r[2]) * 1000 for r in sel if r[3] is not None]
    end = max([r[3] or r[2] for r in sel], default=None)
    pauses = [((r[3] if r[3] is not None else end) - r[2]) * 1000 for r in sel]
    worst = max(range(len(sel)), key=lambda i: pauses[i], default=None)
    acks = sorted(r[3] for r in sel if r[3] is not None)
    gaps = [(b - a) * 1000 for a, b in zip(acks, acks[1:])]
    errors = {}
    for r in sel:
        if r[5]:
            errors[r[5]] = errors.get(r[5], 0) + 1
    # retransmissions: the counter restarts with a new connection; add up
    # the growth of each run of the counter
    retrans, prev = 0, None
    before = [r for r in records if t0 is not None and r[3] is not None and r[3] < t0
              and r[4] is not None]
    if before:
        prev = before[-1][4]
    for r in sel:
        if r[4] is None:
            continue
        if prev is not None and r[4] >= prev:
            retrans += r[4] - prev
        elif prev is not None:  # a new connection
            retrans += r[4]
        prev = r[4]
    return {
        "requests": len(sel),
        "pushes": sum(1 for r in sel if r[0] == "push"),
        "reads": sum(1 for r in sel if r[0] == "read"),
        "answered": len(lat),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "p50_ms": round(percentile(lat, 50), 3) if lat else None,
        "p99_ms": round(percentile(lat, 99), 3) if lat else None,
        "max_latency_ms": round(max(lat), 3) if lat else None,
        "max_pause_ms": round(max(pauses), 3) if pauses else None,
        "max_pause_at": sel[worst][2] if worst is not None else None,  # its send time
        "max_gap_ms": round(max(gaps), 3) if gaps else None,
        "retrans": retrans,
    }


class Cart:
    """The client; see the module's docstring.  records is appended to by
    the thread running run(); read it after stop() (or copy it: list
    appends are atomic, so len() then a slice is a consistent prefix)."""

    def __init__(self, host, port=6379, session=None, interval=INTERVAL, read_every=READ_EVERY,
                 timeout=TIMEOUT, log=None):
        self.host, self.port = host, int(port)
        self.session = session or uuid.uuid4().hex[:12]
        self.key = f"cart:{self.session}"
        self.interval, self.read_every, self.timeout = interval, read_every, timeout
        self.log = log or (lambda msg: None)
        self.records = []
        self.n = 0  # the last number pushed
        self.acked = []  # the numbers acknowledged, in order
        self.unknown = set()  # pushed, no answer: in the cart or not
        self.checked = 0  # items of the cart checked by the reads so far
        self.tail = 0  # the last of them (0: none yet)
        self._seen = 0  # records status() has added up
        self._agg = {"requests": 0, "answered": 0, "errors": 0, "error_kinds": {},
                     "max_latency_ms": 0.0, "max_gap_ms": 0.0}
        self._recent = []  # latencies (ms) of the last 1000 answers
        self._last_ack = None
        self.last_error = None
        self.sock = None
        self.reader = None
        self._stop = threading.Event()
        self._thread = None
        self.retrans = None  # tcpi_total_retrans of the current connection
        self.retrans_closed = 0  # of the connections dropped so far
        self.rtt_us = None

    # ---- the connection

    def connect(self):
        s = socket.create_connection((self.host, self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.timeout)
        self.sock, self.reader = s, Reader(s)

    def drop(self):
        if self.sock:
            r, _ = tcp_info(self.sock)
            if r is not None:
                self.retrans_closed += r
            self.retrans = None
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.reader = None

    def total_retrans(self):
        """Retransmissions over every connection of this client so far."""
        return self.retrans_closed + (self.retrans or 0)

    def request(self, kind, n, *cmd):
        """Send one command, wait for its reply: (reply or None, error or
        None); the record is appended either way."""
        rec = [kind, n, time.monotonic(), None, None, None]
        self.records.append(rec)
        try:
            if self.sock is None:
                try:
                    self.connect()
                except OSError as e:
                    rec[5] = "connect"
                    self.last_error = f"connect: {e}"
                    return None, "connect"
                rec[2] = time.monotonic()
            self.sock.sendall(encode(*cmd))
            reply = self.reader.reply()
        except socket.timeout:
            err, self.last_error = "timeout", f"{kind} {n}: no answer in {self.timeout:.0f} s"
        except (OSError, EOFError) as e:
            err, self.last_error = "reset", f"{kind} {n}: {type(e).__name__}: {e}"
        except RespError as e:
            err, self.last_error = "wrong-reply", f"{kind} {n}: {e}"
        else:
            rec[3] = time.monotonic()
            self.retrans, self.rtt_us = tcp_info(self.sock)
            rec[4] = self.total_retrans()
            return reply, None
        rec[5] = err
        self.drop()
        return None, err

    # ---- the requests

    def push(self):
        self.n += 1
        n = self.n
        reply, err = self.request("push", n, "RPUSH", self.key, n)
        if err:
            self.unknown.add(n)
            self.log(f"push {n}: {err}: {self.last_error}")
            return
        # while nothing went wrong the cart is exactly 1..n
        want = n if not self.unknown else None
        if not isinstance(reply, int) or (want is not None and reply != want):
            self.records[-1][5] = "wrong-reply"
            self.last_error = f"push {n}: reply {reply!r}, want {want}"
            self.log(self.last_error)
            self.unknown.add(n)
            self.drop()
            return
        self.acked.append(n)

    def read(self):
        """LRANGE from the first unchecked item: it must go on from the
        last one checked (strictly increasing; every acknowledged push)."""
        reply, err = self.request("read", self.checked, "LRANGE", self.key, self.checked, -1)
        if err:
            self.log(f"read: {err}: {self.last_error}")
            return
        problem = check_items(reply, self.checked, self.tail, self.acked, self.unknown)
        if problem:
            self.records[-1][5] = "cart"
            self.last_error = f"read from {self.checked}: {problem}"
            self.log(self.last_error)
            return
        if reply:
            self.tail = int(reply[-1])
        self.checked += len(reply)

    def run(self, stop=None):
        """Push and read until stop (an Event; self's own by default) is set."""
        stop = stop or self._stop
        next_push = time.monotonic()
        next_read = next_push + self.read_every
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_read:
                self.read()
                next_read = max(next_read + self.read_every, time.monotonic())
                continue
            if now < next_push:
                stop.wait(min(next_push, next_read) - now)
                continue
            next_push += self.interval
            self.push()
            if next_push < time.monotonic() - self.interval:
                next_push = time.monotonic()  # late: no burst to catch up

    def start(self):
        self._thread = threading.Thread(target=self.run, name="cart", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(self.timeout * 2 + 5)

    # ---- results

    def status(self):
        """The figures so far, added up incrementally (cheap enough for 4
        times a second however long the run: figures() over every record
        would sort them all; p50/p99 here are of the last 1000 answers).
        The request in flight is left for the next call."""
        a = self._agg
        end = len(self.records) - 1
        for r in self.records[self._seen:end]:
            a["requests"] += 1
            if r[5]:
                a["errors"] += 1
                a["error_kinds"][r[5]] = a["error_kinds"].get(r[5], 0) + 1
            if r[3] is not None:
                a["answered"] += 1
                ms = (r[3] - r[2]) * 1000
                a["max_latency_ms"] = max(a["max_latency_ms"], ms)
                self._recent.append(ms)
                if self._last_ack is not None:
                    a["max_gap_ms"] = max(a["max_gap_ms"], (r[3] - self._last_ack) * 1000)
                self._last_ack = r[3]
        self._seen = max(self._seen, end)
        del self._recent[:-1000]
        f = dict(a, error_kinds=dict(a["error_kinds"]))
        f["recent_p50_ms"] = percentile(self._recent, 50)
        f["recent_p99_ms"] = percentile(self._recent, 99)
        f.update({"session": self.session, "key": self.key, "t": time.monotonic(),
                  "last_pushed": self.n, "acked": len(self.acked),
                  "last_acked": self.acked[-1] if self.acked else 0, "checked": self.checked,
                  "unknown": sorted(self.unknown), "last_error": self.last_error,
                  "total_retrans": self.total_retrans(), "rtt_us": self.rtt_us})
        return f

    def final_check(self):
        """Read the whole cart (on a new connection if the last one broke)
        and check it against the acknowledgements: every acknowledged push
        there, in order, none twice, nothing never pushed.  Returns a dict:
        ok, problems (strings), the cart's length, the figures of the whole
        run (figures()) and the retransmissions over every connection."""
        res = {"session": self.session, "key": self.key, "acked": len(self.acked),
               "pushed": self.n, "unknown": sorted(self.unknown), "problems": []}
        reply, err = None, None
        for _ in range(3):
            reply, err = self.request("read", 0, "LRANGE", self.key, 0, -1)
            if not err:
                break
            time.sleep(0.5)
        res.update(figures(self.records))
        res["total_retrans"] = self.total_retrans()
        if err:
            res["problems"].append(f"the final read failed: {err}: {self.last_error}")
            res["ok"] = False
            return res
        res["cart_len"] = len(reply) if isinstance(reply, list) else None
        problem = check_items(reply, 0, 0, self.acked, self.unknown)
        if problem:
            self.records[-1][5] = "cart"
            res["problems"].append(problem)
        if res["errors"]:
            res["problems"].append(f"{res['errors']} client errors {res['error_kinds']}; "
                                   f"last: {self.last_error}")
        res["ok"] = not res["problems"]
        return res


def check_items(reply, start, prev, acked, unknown):
    """None if reply (LRANGE from index start; prev the item before it, 0
    at the start) goes on strictly increasing from prev, holds every
    acknowledged number above prev and only pushed ones; else what is
    wrong."""
    if not isinstance(reply, list):
        return f"LRANGE answered {reply!r}"
    try:
        items = [int(x) for x in reply]
    except (TypeError, ValueError):
        return f"a non-number in the cart: {reply[:5]!r}..."
    seen_set = set()
    last = prev
    for i, v in enumerate(items):
        if v in seen_set:
            return f"item {v} twice (index {start + i})"
        if v <= last:
            return f"item {v} after {last} (index {start + i}): out of order"
        seen_set.add(v)
        last = v
    known = set(acked) | unknown
    extra = [v for v in items if v not in known]
    if extra:
        return f"items never acknowledged nor in flight: {extra[:5]}"
    # every number acknowledged before the read (requests go one at a time:
    # all of acked) after prev must be there: a gap is a lost push
    lost = [n for n in acked if n > prev and n not in seen_set]
    if lost:
        return (f"{len(lost)} acknowledged pushes missing, first {lost[:5]}"
                f" (cart has {len(items)} items from index {start})")
    return None


def self_test():
    """check_items() and figures() on made-up carts: the checks can fail.
    Returns a list of what went wrong (empty: all good)."""
    bad = []
    b = lambda x: [str(v).encode() for v in x]  # noqa: E731
    cases = [  # (reply, start, prev, acked, unknown, ok)
        (b([1, 2, 3]), 0, 0, [1, 2, 3], set(), True),
        (b([1, 2, 4]), 0, 0, [1, 2, 4], {3}, True),  # 3 lost with its connection
        (b([1, 2, 3, 4]), 0, 0, [1, 2, 4], {3}, True),  # ... or not
        (b([3, 4]), 2, 2, [1, 2, 3, 4], set(), True),  # an incremental read
        (b([1, 3]), 0, 0, [1, 2, 3], set(), False),  # an acknowledged push lost
        (b([1, 2]), 0, 0, [1, 2, 3], set(), False),  # the last one lost
        (b([1, 2, 2, 3]), 0, 0, [1, 2, 3], set(), False),  # twice
        (b([1, 3, 2]), 0, 0, [1, 2, 3], set(), False),  # out of order
        (b([2, 3]), 2, 2, [1, 2, 3], set(), False),  # 2 again after a read up to 2
        (b([1, 2, 3, 9]), 0, 0, [1, 2, 3], set(), False),  # never pushed
        (b([1, 2, 3]), 0, 0, [1, 2, 3], {9}, True),
        ([b"x"], 0, 0, [], set(), False),
        ("OK", 0, 0, [], set(), False),
    ]
    for reply, start, prev, acked, unknown, ok in cases:
        got = check_items(reply, start, prev, acked, unknown)
        if (got is None) != ok:
            bad.append(f"check_items({reply}, {start}, {prev}, {acked}, {unknown}): {got}")
    recs = [["push", 1, 0.0, 0.001, 0, None], ["push", 2, 0.005, 0.305, 1, None],
            ["push", 3, 0.31, None, None, "reset"], ["push", 4, 0.4, 0.402, 0, None]]
    f = figures(recs)
    want = {"requests": 4, "errors": 1, "error_kinds": {"reset": 1}, "max_latency_ms": 300.0,
            "retrans": 1}
    for k, v in want.items():
        if f[k] != v:
            bad.append(f"figures: {k} = {f[k]}, want {v}")
    if percentile(list(range(1, 101)), 99) != 99 or percentile([5.0], 50) != 5.0:
        bad.append(f"percentile: p99 of 1..100 = {percentile(list(range(1, 101)), 99)}")
    if figures(recs, 0.3, 1.0)["requests"] != 2:
        bad.append(f"figures over [0.3, 1.0): {figures(recs, 0.3, 1.0)}")
    return bad


# ---- the program --------------------------------------------------------------------------


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main():
    if sys.argv[1:] == ["--self-test"]:
        bad = self_test()
        print("\n".join(bad) or "cart.py self-test: all good")
        return 1 if bad else 0
    ap = argparse.ArgumentParser(description="The shopping-cart client (tests/lib/cart.py).")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("status", help="JSON status file, rewritten every 0.25 s and at the end")
    ap.add_argument("--session", help="cart:<session> (default: a fresh random name)")
    ap.add_argument("--duration", type=float, help="stop after SEC seconds (default: on SIGTERM)")
    ap.add_argument("--interval", type=float, default=INTERVAL, help="seconds between pushes")
    ap.add_argument("--read-every", type=float, default=READ_EVERY,
                    help="seconds between reads of the cart")
    ap.add_argument("--no-records", action="store_true",
                    help="leave the per-request records out of the final status")
    args = ap.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log = lambda msg: print(f"cart: {time.monotonic():.3f} {msg}", file=sys.stderr, flush=True)
    cart = Cart(args.host, args.port, args.session, args.interval, args.read_every, log=log)
    try:
        cart.connect()
    except OSError as e:
        write_json(args.status, {"running": False, "error": f"connect: {e}", "t": time.monotonic()})
        print(f"cart: cannot connect to {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    worker = threading.Thread(target=cart.run, args=(stop,), daemon=True)
    worker.start()
    end = time.monotonic() + args.duration if args.duration else None
    while not stop.is_set():
        st = cart.status()
        st["running"] = True
        write_json(args.status, st)
        stop.wait(0.25 if end is None else max(0, min(0.25, end - time.monotonic())))
        if end is not None and time.monotonic() >= end:
            stop.set()
    worker.join(TIMEOUT * 2 + 5)
    final = cart.final_check()
    st = cart.status()
    st.update({"running": False, "final": final})
    if not args.no_records:
        st["records"] = cart.records
    write_json(args.status, st)
    log(f"final: ok={final['ok']} {final['problems']}")
    return 0 if final["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

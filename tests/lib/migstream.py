#!/usr/bin/env python3
"""The live migration stream on the wire, for tests/linux/migrate_test.py:
migration endpoints (unix sockets, 127.0.0.1 TCP), a parser that follows
the godwit state stream (docs/state.md) as it goes by, and Proxy, the
fault-injecting man in the middle between a source and a destination.

The proxy forwards each direction on its own thread and parses the stream
as it passes, so faults can be placed by section; it also decodes the
destination's replies (READY/ERROR/RUNNING: 24 bytes; ERROR followed by its
reason) and can hold them back.
Closing a socket another thread is blocked on sends nothing on Linux, so
it shuts sockets down before closing them (for a reset: SO_LINGER 0 and
shutdown(SHUT_RD)).
"""

import socket
import struct
import threading
import time

from harness import check

# The commit protocol's messages (src/migration/mig_proto.h): u32 magic, u32 type,
# u64 value, u64 check (XXH3-64 of the first 16 bytes; not verified here).
# ERROR's value is errno | reason length << 32; a length > 0 is followed by
# that many bytes of reason (UTF-8) and their u64 XXH3-64 check (not verified).
MSG_LEN = 24
REASON_MAX = 512
REASON_CHECK = 8
REPLY_MAGIC = 0x50525747  # "GWRP", destination -> source
COMMIT_MAGIC = 0x4D435747  # "GWCM", source -> destination
REPLY_NAMES = {1: "READY", 2: "ERROR", 3: "RUNNING", 4: "ROUND", 5: "RESUME_AT"}

STATE_MAGIC = b"\x89GWST\r\n\x1a"
STATE_HEADER_LEN = 112  # format 2: with the VM's identity (docs/state.md)
SEC_CONFIG, SEC_RAM, SEC_DEVICE, SEC_ROUND, SEC_ZERO, SEC_EOF = 1, 2, 3, 4, 5, 0x7F
# disks in a live stream (src/state/state_block.h)
SEC_DISKS, SEC_BLOCK, SEC_DISKSUM = 9, 10, 11


def split_reply(buf):
    """The first reply in buf: ((name, value, reason), bytes it takes), or
    None while it is incomplete.  reason is ERROR's text (None if it has
    none); a foreign magic takes the whole buffer, a reason length over
    REASON_MAX just the 24 bytes (the source refuses it)."""
    if len(buf) < MSG_LEN:
        return None
    magic, typ, value, _check = struct.unpack_from("<IIQQ", buf, 0)
    if magic != REPLY_MAGIC:
        return ("BAD-MAGIC", magic, None), len(buf)
    name = REPLY_NAMES.get(typ, f"type-{typ}")
    rlen = value >> 32 if typ == 2 else 0
    if not rlen or rlen > REASON_MAX:
        return (name, value, None), MSG_LEN
    n = MSG_LEN + rlen + REASON_CHECK
    if len(buf) < n:
        return None
    return (name, value & 0xFFFFFFFF, buf[MSG_LEN:MSG_LEN + rlen].decode("utf-8", "replace")), n


def parse_replies(data):
    """Every whole reply in data, as split_reply gives them."""
    out = []
    while True:
        got = split_reply(data)
        if not got:
            return out
        out.append(got[0])
        data = data[got[1]:]


# ---- endpoints -------------------------------------------------------------------


def listening(uri):
    """Whether something listens on uri, read from /proc (connecting to
    find out would use up a destination's one incoming connection)."""
    try:
        if uri.startswith("tcp:"):
            port = int(uri.rsplit(":", 1)[1])
            for f in ("/proc/net/tcp", "/proc/net/tcp6"):
                with open(f) as fh:
                    for line in fh.readlines()[1:]:
                        p = line.split()
                        if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                            return True
        elif uri.startswith("unix:"):
            path = uri[5:]
            with open("/proc/net/unix") as fh:
                for line in fh.readlines()[1:]:
                    p = line.split()
                    if len(p) >= 8 and p[7] == path and int(p[3], 16) & 0x10000:
                        return True
    except OSError:
        pass
    return False


def wait_listening(vm, uri, timeout=20.0):
    """Wait until vm (a harness.VM) listens on uri, failing if it exits."""
    deadline = time.monotonic() + timeout
    while not listening(uri):
        check(vm.proc.poll() is None, f"{vm.name}: exited ({vm.proc.returncode}) before "
                                      f"listening on {uri}: {vm.stderr()[-400:]}")
        check(time.monotonic() < deadline, f"{vm.name}: not listening on {uri} after {timeout}s")
        time.sleep(0.01)


def connect_uri(uri):
    if uri.startswith("tcp:"):
        host, port = uri[4:].rsplit(":", 1)
        return socket.create_connection((host, int(port)), timeout=10)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(uri[5:])
    return s


def listen_uri(uri):
    if uri.startswith("tcp:"):
        host, port = uri[4:].rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(uri[5:])
    s.listen(4)
    return s


# ---- the fault-injecting proxy ---------------------------------------------------------


class StreamParser:
    """Follows the godwit state stream (docs/state.md) as it goes by:
    .sections is [(type, name, instance, offset, payload offset, payload
    length)] in stream order.  A stream that does not start with the magic
    (QEMU's) is left alone (.ok False)."""

    def __init__(self):
        self.buf = bytearray()
        self.pos = 0  # stream offset of buf[0]
        self.skip = 0  # payload bytes still to pass over
        self.header = True
        self.ok = True
        self.sections = []

    def feed(self, data):
        if not self.ok:
            return
        if self.skip >= len(data):
            self.skip -= len(data)
            self.pos += len(data)
            return
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                del self.buf[:n]
                self.pos += n
                self.skip -= n
                if self.skip:
                    return
            if self.header:
                if len(self.buf) < STATE_HEADER_LEN:
                    return
                if bytes(self.buf[:8]) != STATE_MAGIC:
                    self.ok = False
                    return
                self.header = False
                self.flags = struct.unpack_from("<I", self.buf, 20)[0]
                del self.buf[:STATE_HEADER_LEN]
                self.pos += STATE_HEADER_LEN
                continue
            if len(self.buf) < 12:
                return
            typ, nlen, _ver, inst, plen = struct.unpack_from("<BBHII", self.buf, 0)
            if len(self.buf) < 12 + nlen:
                return
            name = bytes(self.buf[12:12 + nlen]).decode("ascii", "replace")
            self.sections.append((typ, name, inst, self.pos, self.pos + 12 + nlen, plen))
            del self.buf[:12 + nlen]
            self.pos += 12 + nlen
            self.skip = plen

    def find(self, pred, nth=1):
        """The nth section matching pred(type, name, instance), or None."""
        for s in self.sections:
            if pred(s[0], s[1], s[2]):
                nth -= 1
                if nth == 0:
                    return s
        return None


class Proxy:
    """Listens on a unix socket or 127.0.0.1 TCP port (self.uri, a fresh
    ctx.endpoint(kind) of a migration.Ctx), takes one connection (the
    source's) and connects it to target (the destination's -incoming URI).
    One thread per direction.  Hooks, each optional:

      flip=(where, byte_in_payload[, mask])  flip one bit (mask: the bits,
            0x10 unless given) of the stream byte at the
            given offset in the payload of the section where() returns
            (where: function of the StreamParser, called as sections arrive;
            a plain int is an absolute stream offset)
      truncate=where_or_offset  forward the stream up to that offset, then
            close both connections (where() may return an absolute offset)
      stall=where  stop forwarding at that section's first byte (what
            arrives after it is kept, not sent); .stalled is set; release()
            sends it on
      cut_after=N  after N bytes of stream, reset both connections (TCP RST
            where the socket is TCP)
      hold_replies  keep the destination's messages instead of forwarding
            them; release_replies() sends them on

    .replies: the destination's messages decoded as (type name, value);
    .ready: set when READY arrived; .done: set when both directions ended.
    """

    def __init__(self, ctx, target, kind="unix", flip=None, truncate=None, stall=None,
                 cut_after=None, hold_replies=False):
        self.target = target
        self.uri = ctx.endpoint(kind)
        self.lsock = listen_uri(self.uri)
        self.flip, self.truncate, self.stall = flip, truncate, stall
        self.cut_after, self.hold_replies = cut_after, hold_replies
        self.parser = StreamParser()
        self.up = 0  # stream bytes received from the source
        self.sent = 0  # stream bytes forwarded to the destination
        self.flipped_at = None
        self.truncated_at = None
        self.replies = []
        self.held = b""  # destination -> source, held back
        self.held_up = b""  # source -> destination, kept by a stall
        self.ready = threading.Event()
        self.stalled = threading.Event()
        self.released = threading.Event()
        self.done = threading.Event()
        self.closed = False
        self.lock = threading.Lock()
        self.src = self.dst = None
        self.error = None
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    # -- plumbing

    def _accept(self):
        try:
            self.lsock.settimeout(120)
            self.src, _ = self.lsock.accept()
            self.src.settimeout(None)
            self.dst = connect_uri(self.target)
            self.dst.settimeout(None)
        except OSError as e:
            self.error = f"proxy accept/connect: {e}"
            self.close()
            self.done.set()
            return
        finally:
            self.lsock.close()
        t = threading.Thread(target=self._down, daemon=True)
        t.start()
        self._up()
        t.join()
        self.close()
        self.done.set()

    def close(self, reset=False):
        with self.lock:
            if self.closed:
                return
            self.closed = True
            for s in (self.src, self.dst):
                if s is None:
                    continue
                try:
                    # close() alone neither wakes the other thread's recv()
                    # nor sends anything while that recv() holds the socket.
                    if reset and s.family == socket.AF_INET:
                        # RST once the last reference goes
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        s.shutdown(socket.SHUT_RD)
                    else:
                        s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.stalled.set()
        self.released.set()

    def _send(self, sock, data):
        try:
            sock.sendall(data)
            return True
        except OSError:
            self.close()
            return False

    def _resolve(self, spec):
        """An absolute offset from an int or a where() function, or None."""
        if spec is None or isinstance(spec, int):
            return spec
        return spec(self.parser)

    # -- source -> destination

    def _up(self):
        flip_off = trunc_off = stall_off = None
        while not self.closed:
            try:
                data = self.src.recv(65536)
            except OSError:
                data = b""
            if not data:
                # The source is gone (or done): pass its EOF on.
                if self.stalled.is_set() or self.closed:
                    self.close()
                else:
                    try:
                        self.dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return
            start = self.up
            self.up += len(data)
            self.parser.feed(data)
            data = bytearray(data)
            if self.flip is not None and flip_off is None and self.flipped_at is None:
                where, byte = self.flip[:2]
                if isinstance(where, int):
                    flip_off = where
                else:
                    sec = where(self.parser)
                    if sec is not None:
                        flip_off = sec[4] + min(byte, max(sec[5] - 1, 0))
            if flip_off is not None and start <= flip_off < self.up:
                data[flip_off - start] ^= self.flip[2] if len(self.flip) > 2 else 0x10
                self.flipped_at, flip_off = flip_off, None
            if self.truncate is not None and trunc_off is None:
                trunc_off = self._resolve(self.truncate)
            if trunc_off is not None and trunc_off < self.up:
                keep = max(0, trunc_off - start)
                self._send(self.dst, bytes(data[:keep]))
                self.sent += keep
                self.truncated_at = start + keep
                self.close()
                return
            if self.stall is not None and stall_off is None and not self.released.is_set():
                sec = self.stall(self.parser)
                if sec is not None:
                    stall_off = sec[3]
            if stall_off is not None and stall_off < self.up and not self.released.is_set():
                keep = max(0, stall_off - start)
                if self.sent < stall_off:
                    if not self._send(self.dst, bytes(data[:keep])):
                        return
                    self.sent += keep
                    self.held_up = bytes(data[keep:])
                else:
                    self.held_up += bytes(data)
                self.stalled.set()
                continue
            if self.cut_after is not None and self.up >= self.cut_after:
                keep = max(0, self.cut_after - start)
                self._send(self.dst, bytes(data[:keep]))
                self.sent += keep
                self.close(reset=True)
                return
            if not self._send(self.dst, bytes(data)):
                return
            self.sent += len(data)

    def release(self):
        """Send on what a stall kept, and forward from then on."""
        with self.lock:
            held, self.held_up = self.held_up, b""
            self.released.set()
        if held and not self.closed:
            self._send(self.dst, held)
            self.sent += len(held)

    # -- destination -> source

    def _down(self):
        buf = b""
        while not self.closed:
            try:
                data = self.dst.recv(65536)
            except OSError:
                data = b""
            if not data:
                # The destination is gone: the source must learn it now.
                if self.hold_replies or self.stalled.is_set():
                    self.close()
                else:
                    try:
                        self.src.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    # A destination that died mid-stream cannot take more.
                    if self.up > self.sent or self.parser.find(
                            lambda t, n, i: t == SEC_EOF) is None:
                        self.close()
                return
            buf += data
            out = b""
            while (got := split_reply(buf)) is not None:
                reply, n = got
                self.replies.append(reply)
                if reply[0] == "READY":
                    self.ready.set()
                # ROUND acknowledgements keep the pre-copy going; the
                # verdicts (READY, ERROR, RUNNING) are what may be held
                if self.hold_replies and reply[0] not in ("ROUND", "BAD-MAGIC"):
                    self.held += buf[:n]
                else:
                    out += buf[:n]
                buf = buf[n:]
            if out and not self._send(self.src, out):
                return

    def release_replies(self):
        held, self.held, self.hold_replies = self.held, b"", False
        if held and not self.closed:
            self._send(self.src, held)

    def describe(self):
        kinds = {}
        for s in self.parser.sections:
            kinds[s[0]] = kinds.get(s[0], 0) + 1
        return (f"{self.up} bytes from the source, {self.sent} forwarded, sections by type "
                f"{kinds}, replies {self.replies}")


def nth_section(typ, nth=1, name=None):
    """A where() for Proxy: the nth section of a type (and name)."""
    return lambda p: p.find(lambda t, n, i: t == typ and (name is None or n == name), nth)


def at_section(typ, nth=1, extra=0, name=None):
    """A where() for Proxy.truncate: offset `extra` bytes into the nth
    section of a type (or of any of a tuple of types)."""
    types = typ if isinstance(typ, tuple) else (typ,)

    def where(p):
        s = p.find(lambda t, n, i: t in types and (name is None or n == name), nth)
        return None if s is None else s[3] + extra
    return where


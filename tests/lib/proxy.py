#!/usr/bin/env python3
"""A TCP fault proxy for the multi-host tests: it forwards connections to
a target, counts the bytes, and cuts the link on demand (Python stdlib
only).

In this process (a Proxy object, threads; the root namespace or wherever
the test runs):

    from proxy import Proxy
    with Proxy(("127.0.0.1", 0), ("127.0.0.1", 8443)) as p:   # port 0: pick one
        p.port, p.address                # the listening port, "ip:port"
        p.stats()                        # the counters (below)
        p.cut_after(50 << 20)            # reset every connection once 50 MiB more went
                                         # client -> server (exactly that much is delivered)
        p.cut_now()                      # reset every open connection now
        p.disarm()                       # forget a pending cut_after
        p.refuse(True)                   # new connections are reset at once; False: normal
        p.stop()                         # (also on leaving the with block)

Inside a network namespace (the hosts of tests/lib/hosts.py live in
namespaces and a namespace is a property of a process, not of a thread):
the same proxy runs as a child process, `ip netns exec NS python3
tests/lib/proxy.py --listen IP:PORT --target HOST:PORT`, driven over its
stdin/stdout by a ProxyProcess with the same methods:

    from proxy import ProxyProcess
    p = ProxyProcess(host.exec([]), (host.ip, 9443), (host.ip, hosts.PORT))

The control channel is one line per command on the child's stdin and one
JSON line per answer on its stdout:

    (at start)        -> {"ready": true, "listen": "IP:PORT", "target": "HOST:PORT"}
                         or {"error": "..."} and exit 1 (e.g. address in use)
    stats             -> the counters
    cut-after N       -> {"ok": true, "armed": N}
    cut-now           -> {"ok": true, "cut": connections reset}
    disarm            -> {"ok": true, "armed": bytes that were left, or null}
    refuse on|off     -> {"ok": true, "refusing": bool}
    quit (or EOF)     -> {"ok": true}; every connection is closed, the child exits 0
    anything else     -> {"error": "..."}

The counters (stats()): {"listen", "target", "c2s", "s2c" (bytes
delivered client->server and server->client, every connection so far),
"connections" (accepted, refused ones included), "open", "refused",
"cuts" (how many times a cut fired), "armed" (client->server bytes left
before the pending cut_after fires, or null), "conns": the last 64
connections [{"id", "peer" ("ip:port" of the client), "c2s", "s2c",
"open" (bool), "end": null while open, "eof" | "cut" | "refused" |
"error: ..." }]}.

Cuts are abrupt: SO_LINGER {on, 0} then close, so both ends get a TCP
RST, not a FIN (a host that died, a link that broke, as TCP sees it
once it notices).  A cut_after arms once: it fires when the client->server
bytes delivered since the call reach N (the connection carrying byte N
gets exactly up to it, then every open connection is reset) and is then
disarmed; a new cut_after replaces a pending one.  refuse affects only
new connections (pair it with cut_now for "the host is gone").
Connections that reach the target are counted even when the target
refuses (the client then sees its connection closed).

Pairing through the proxy (tests/hosts/proxy_test.py): a godwitd pins
its peers' certificates, not their names (peer_client.c: VERIFYHOST off,
PINNEDPUBLICKEY), and a join token carries the address the joining host
will store and call (`godwit peer token --address HOST:PORT`).  So the
proxy runs in B's namespace on B.ip:PROXY_PORT forwarding to B's
--listen, B makes its token with --address B.ip:PROXY_PORT, A adds it:
A's record of B is the proxy, so every call A makes to B (the pairing
itself included) crosses it, while B's calls to A stay direct.
"""
import argparse
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time

BUF = 256 << 10  # bytes buffered per direction before reading pauses
KEEP = 64  # connections kept in stats()["conns"]


def _addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _reset(sock):
    """Close with an RST (SO_LINGER on, 0 s)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    def __init__(self, proxy, cid, client, peer):
        self.proxy, self.id, self.client, self.peer = proxy, cid, client, peer
        self.server = None
        self.c2s = self.s2c = 0
        self.end = None
        self.cut = False  # set by another thread: reset at the next wake-up
        self.wake_r, self.wake_w = os.pipe()

    def info(self):
        return {"id": self.id, "peer": self.peer, "c2s": self.c2s, "s2c": self.s2c,
                "open": self.end is None, "end": self.end}

    def wake(self):
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    def run(self):
        try:
            self._pump()
        except Exception as e:  # noqa: BLE001  (a proxy reports, it does not crash)
            self._finish(f"error: {e}", reset=True)
        finally:
            for fd in (self.wake_r, self.wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _finish(self, end, reset):
        if self.end is not None:
            return
        for s in (self.client, self.server):
            if s is None:
                continue
            if reset:
                _reset(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass
        with self.proxy.lock:
            self.end = end
            self.proxy.open.discard(self)

    def _pump(self):
        p = self.proxy
        try:
            self.server = socket.create_connection(p.target, timeout=10)
        except OSError as e:
            self._finish(f"error: target: {e}", reset=True)
            return
        for s in (self.client, self.server):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = bytearray(), bytearray()  # client->server, server->client
        c_eof = s_eof = False
        c_shut = s_shut = False
        while True:
            if self.cut:
                self._finish("cut", reset=True)
                return
            rl, wl = [self.wake_r], []
            if not c_eof and len(up) < BUF:
                rl.append(self.client)
            if not s_eof and len(down) < BUF:
                rl.append(self.server)
            if up:
                wl.append(self.server)
            if down:
                wl.append(self.client)
            r, w, _ = select.select(rl, wl, [])
            if self.wake_r in r:
                os.read(self.wake_r, 64)
                continue
            if self.client in r:
                try:
                    data = self.client.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError as e:
                    self._finish(f"error: client: {e}", reset=True)
                    return
                if data == b"":
                    c_eof = True
                elif data:
                    up += data
            if self.server in r:
                try:
                    data = self.server.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError as e:
                    self._finish(f"error: target: {e}", reset=True)
                    return
                if data == b"":
                    s_eof = True
                elif data:
                    down += data
            if up and self.server in w:
                room = p._room()  # client->server bytes allowed before a cut fires
                n_try = len(up) if room is None else min(len(up), room)
                try:
                    n = self.server.send(up[:n_try]) if n_try else 0
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as e:
                    self._finish(f"error: target: {e}", reset=True)
                    return
                del up[:n]
                self.c2s += n
                if p._sent_up(n):  # the armed cut fired: every connection, this one too
                    continue
            if down and self.client in w:
                try:
                    n = self.client.send(down)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as e:
                    self._finish(f"error: client: {e}", reset=True)
                    return
                del down[:n]
                self.s2c += n
                with p.lock:
                    p.s2c += n
            # half-closes travel once the data before them went
            if c_eof and not up and not s_shut:
                self.server.shutdown(socket.SHUT_WR)
                s_shut = True
            if s_eof and not down and not c_shut:
                self.client.shutdown(socket.SHUT_WR)
                c_shut = True
            if c_shut and s_shut:
                self._finish("eof", reset=False)
                return


class Proxy:
    """See the module's docstring."""

    def __init__(self, listen, target):
        self.target = (target[0], int(target[1]))
        self.lock = threading.Lock()
        self.c2s = self.s2c = 0
        self.n_conns = self.refused = self.cuts = 0
        self.refusing = False
        self.armed = None  # client->server bytes left before a cut
        self.open = set()
        self.conns = []  # the last KEEP, for stats
        self.lsock = socket.socket(socket.AF_INET6 if ":" in listen[0] else socket.AF_INET,
                                   socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((listen[0], int(listen[1])))
        self.lsock.listen(64)
        self.host, self.port = self.lsock.getsockname()[:2]
        self.address = f"{self.host}:{self.port}"
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="proxy-accept")
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- the accept loop

    def _accept(self):
        while not self._stopping:
            try:
                c, peer = self.lsock.accept()
            except OSError:
                if self._stopping:
                    return
                continue
            with self.lock:
                self.n_conns += 1
                conn = _Conn(self, self.n_conns, c, f"{peer[0]}:{peer[1]}")
                self.conns.append(conn)
                del self.conns[:-KEEP]
                if self.refusing or self._stopping:
                    self.refused += 1
                    conn.end = "refused"
                    _reset(c)
                    os.close(conn.wake_r)
                    os.close(conn.wake_w)
                    continue
                self.open.add(conn)
            threading.Thread(target=conn.run, daemon=True, name=f"proxy-{conn.id}").start()

    # ---- the cut (called by the connections)

    def _room(self):
        with self.lock:
            return self.armed

    def _sent_up(self, n):
        """n more bytes went client->server: True when that fired the cut."""
        with self.lock:
            self.c2s += n
            if self.armed is None or n == 0:
                return False
            self.armed -= n
            if self.armed > 0:
                return False
            self.armed = None
        self.cut_now(wait=False)  # this thread is one of the victims
        return True

    # ---- the controls

    def cut_after(self, n):
        """Reset every open connection once n more client->server bytes
        were delivered (n <= 0: now)."""
        n = int(n)
        if n <= 0:
            with self.lock:
                self.armed = None
            self.cut_now()
            return 0
        with self.lock:
            self.armed = n
        return n

    def disarm(self):
        """Forget a pending cut_after: the bytes it still had to go, or None."""
        with self.lock:
            left, self.armed = self.armed, None
        return left

    def cut_now(self, wait=True):
        """Reset every open connection; returns how many.  wait: until
        they are closed (up to 2 s)."""
        with self.lock:
            victims = list(self.open)
            if victims:
                self.cuts += 1
        for c in victims:
            c.cut = True
            c.wake()
        end = time.monotonic() + 2
        while wait and time.monotonic() < end and any(c.end is None for c in victims):
            time.sleep(0.005)
        return len(victims)

    def refuse(self, on=True):
        with self.lock:
            self.refusing = bool(on)
        return self.refusing

    def stats(self):
        with self.lock:
            return {"listen": self.address, "target": f"{self.target[0]}:{self.target[1]}",
                    "c2s": self.c2s, "s2c": self.s2c, "connections": self.n_conns,
                    "open": len(self.open), "refused": self.refused, "cuts": self.cuts,
                    "armed": self.armed, "refusing": self.refusing,
                    "conns": [c.info() for c in self.conns]}

    def stop(self):
        """Stop listening and reset what is open (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        self.cut_now()
        self._thread.join(5)


class ProxyProcess:
    """The proxy as a child process (e.g. inside a namespace: prefix
    ["ip", "netns", "exec", NS], which Host.exec([]) gives), with Proxy's
    methods over the control channel (the module's docstring)."""

    def __init__(self, prefix, listen, target, python=sys.executable, log=None):
        argv = [*map(str, prefix), python, os.path.abspath(__file__), "--listen",
                f"{listen[0]}:{listen[1]}", "--target", f"{target[0]}:{target[1]}"]
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log if log is not None else subprocess.DEVNULL,
                                     text=True, bufsize=1)
        first = self._line()
        if not first.get("ready"):
            self._kill()
            raise RuntimeError(f"proxy {listen} -> {target}: {first.get('error', first)}")
        self.address = first["listen"]
        self.host, self.port = _addr(self.address)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.poll()
            raise RuntimeError(f"proxy process gone (exit {rc})")
        return json.loads(line)

    def _cmd(self, text):
        with self._lock:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy process gone (exit {self.proc.returncode})")
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
            reply = self._line()
        if "error" in reply:
            raise RuntimeError(f"proxy: {text}: {reply['error']}")
        return reply

    def stats(self):
        return self._cmd("stats")

    def cut_after(self, n):
        return self._cmd(f"cut-after {int(n)}")["armed"]

    def cut_now(self):
        return self._cmd("cut-now")["cut"]

    def disarm(self):
        return self._cmd("disarm")["armed"]

    def refuse(self, on=True):
        return self._cmd("refuse " + ("on" if on else "off"))["refusing"]

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self):
        """Quit the child (killed if it does not within 5 s); idempotent."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def _serve(listen, target):
    out = sys.stdout

    def say(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        p = Proxy(_addr(listen), _addr(target))
    except (OSError, ValueError) as e:
        say({"error": f"listen {listen}: {e}"})
        return 1
    say({"ready": True, "listen": p.address, "target": target})
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            cmd, args = words[0], words[1:]
            try:
                if cmd == "stats" and not args:
                    say(p.stats())
                elif cmd == "cut-after" and len(args) == 1:
                    say({"ok": True, "armed": p.cut_after(int(args[0]))})
                elif cmd == "disarm" and not args:
                    say({"ok": True, "armed": p.disarm()})
                elif cmd == "cut-now" and not args:
                    say({"ok": True, "cut": p.cut_now()})
                elif cmd == "refuse" and args in (["on"], ["off"]):
                    say({"ok": True, "refusing": p.refuse(args[0] == "on")})
                elif cmd == "quit" and not args:
                    say({"ok": True})
                    break
                else:
                    say({"error": f"unknown command {line.strip()!r}"})
            except ValueError as e:
                say({"error": str(e)})
    finally:
        p.stop()
    return 0


def main():
    ap = argparse.ArgumentParser(description="TCP fault proxy (see tests/lib/proxy.py)")
    ap.add_argument("--listen", required=True, help="IP:PORT (port 0: pick one)")
    ap.add_argument("--target", required=True, help="HOST:PORT")
    a = ap.parse_args()
    sys.exit(_serve(a.listen, a.target))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Recordings to central custody (docs/custody.md), end to end: shimd
uploads sealed recordings to a real nginx (WebDAV PUT, client certificates
required, one directory per shim, no overwrite), started here with a test
CA made by openssl. Covers byte-identical delivery and `session verify` of
the stored copy, the local copy going only after the check, a store down
during 20 sessions, kill -9 of shimd mid-upload, a wrong CA and a wrong
server name (nothing sent), a client certificate the store refuses, a full
disk with undelivered recordings, HTTP 500 / 413 and a store that keeps a
truncated object, the outage alarm, and `shimctl upload test`."""

import base64
import http.server
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402
from shimtest import Shim, yaml_str  # noqa: E402

SHIM_ID = "shim-cust-1"
STORE_NAME = "store.test"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
            "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, name + ".pem")


def make_cert(d, ca, name, cn, server):
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=%s\nsubjectAltName=DNS:%s\n" %
                ("serverAuth" if server else "clientAuth", cn))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + cn, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
            "-CAkey", ca + ".key", "-CAcreateserial", "-out", name + ".pem",
            "-days", "2", "-extfile", ext, cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


class Pki:
    def __init__(self, d):
        self.d = d
        self.ca = make_ca(d, "ca")
        self.other_ca = make_ca(d, "otherca")
        self.server = make_cert(d, "ca", "server", STORE_NAME, True)
        self.client = make_cert(d, "ca", "client", SHIM_ID, False)
        # trusted CA, but not this shim's name: its own directory only
        self.intruder = make_cert(d, "ca", "intruder", "shim-other", False)
        # a client certificate from a CA the store does not trust
        self.rogue = make_cert(d, "otherca", "rogue", SHIM_ID, False)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format store '$request_method $uri $status $ssl_client_verify';
    access_log {d}/access.log store;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    {custody}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {name};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client on;
        root {d}/store;
        {locations}
    }}
}}
"""

# The receiving store of docs/custody.md (kept the same there).
CUSTODY_HTTP = r"""
    map $ssl_client_s_dn $client_cn {
        default "";
        "~(^|,)CN=(?<cn>[^,]+)" $cn;
    }
"""
CUSTODY_LOCATIONS = r"""
        client_max_body_size 256m;
        location ~ ^/custody/(?<shimdir>[A-Za-z0-9._-]+)/[A-Za-z0-9._-]+$ {
            if ($shimdir != $client_cn) { return 403; }
            set $put_over "";
            if ($request_method = PUT) { set $put_over "p"; }
            if (-e $request_filename) { set $put_over "${put_over}e"; }
            if ($put_over = "pe") { return 409; }
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
            limit_except GET HEAD PUT { deny all; }
        }
        location /err500/ { return 500; }
        location /small/ {
            client_max_body_size 1k;
            dav_methods PUT;
            create_full_put_path on;
        }
        location / { return 404; }
"""


class Nginx:
    def __init__(self, d, pki, port=None):
        self.d = d
        self.port = port or free_port()
        self.proc = None
        for sub in ("store", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(
                d=d, port=self.port, name=STORE_NAME, cert=pki.server[0],
                key=pki.server[1], ca=pki.ca, custody=CUSTODY_HTTP,
                locations=CUSTODY_LOCATIONS))

    def start(self):
        self.proc = subprocess.Popen(
            ["nginx", "-c", self.conf, "-p", self.d, "-e",
             os.path.join(self.d, "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True)
        deadline = time.time() + 20
        while not listening(self.port):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("nginx did not start:\n" + self.errors())
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def errors(self):
        try:
            with open(os.path.join(self.d, "error.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def requests(self):
        try:
            with open(os.path.join(self.d, "access.log")) as f:
                return [l.split() for l in f if l.strip()]
        except OSError:
            return []

    def stored(self, shim_id=SHIM_ID):
        p = os.path.join(self.d, "store", "custody", shim_id)
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def object(self, name, shim_id=SHIM_ID):
        with open(os.path.join(self.d, "store", "custody", shim_id, name),
                  "rb") as f:
            return f.read()


class BadStore:
    """A TLS store (client certificates required) that answers a PUT with
    201 but keeps only half of the body: what a store that truncates
    looks like to the check."""

    def __init__(self, pki):
        self.objects = {}
        self.puts = 0
        store = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_PUT(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                store.puts += 1
                store.objects[self.path] = body[:len(body) // 2]
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _obj(self, body):
                data = store.objects.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self):
                self._obj(False)

            def do_GET(self):
                self._obj(True)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.server[0], pki.server[1])
        ctx.load_verify_locations(pki.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever,
                                  daemon=True)
        self.t.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- the shim ---------------------------------------------------------------

def techs(n):
    """n technicians with their own secrets: one session each, so the
    TOTP replay rule never makes a test wait for the next time step."""
    out = {}
    for i in range(n):
        raw = ("tech-%02d-secret-key!" % i).encode()[:20]
        out["t%02d@example.org" % i] = base64.b32encode(raw).decode()
    return out


def custody_block(pki, port, path="custody", server_name=STORE_NAME,
                  ca=None, client=None, keep=0, extra=""):
    cert, key = client or pki.client
    return "\n".join([
        "custody:",
        "  url: %s" % yaml_str("https://127.0.0.1:%d/%s" % (port, path)),
        "  server_name: %s" % yaml_str(server_name),
        "  ca: %s" % yaml_str(ca or pki.ca),
        "  client_cert: %s" % yaml_str(cert),
        "  client_key: %s" % yaml_str(key),
        "  keep_local_days: %d" % keep,
        "  retry_max_seconds: 2",
        "  timeout_seconds: 10",
    ]) + "\n" + extra


def make_shim(pki, port, ntech=4, storage_extra="", **kw):
    s = Shim(techs=techs(ntech), name=SHIM_ID,
             extra=custody_block(pki, port, **kw))
    with open(s.config) as f:
        text = f.read()
    root = "  root: %s\n" % yaml_str(s.storage)
    text = text.replace(root, root + storage_extra)
    s.write_config(text)
    return s


def session(s, t, dev, tid, payload=b"hello pump\r"):
    """One authenticated session with some traffic, ended by the admin;
    returns its ID once sealed."""
    sid = s.login(t, tid=tid)
    # in small pieces, each read before the next (a single large write
    # can meet the relay stall noted in big_session)
    for i in range(0, len(payload), 256):
        piece = payload[i:i + 256]
        t.write(piece)
        dev.read_exact(len(piece), 20)
    s.ctl("end-session", check=True)
    st.ended(t, 10)
    t.read_until(st.PROMPT, 10)
    s.footer_reason(sid, 10)
    return sid


def big_session(s, t, dev, tid, mb):
    """A session with mb MiB of device output, drained from the
    technician's end by a thread while it is written; returns its ID once
    sealed. (The end of the output may still sit in shimd when the admin
    ends the session: only the recording's size matters here.)"""
    sid = s.login(t, tid=tid)
    stop = []

    def drain():
        while not stop:
            try:
                t._fill(0.1)
            except EOFError:
                return
            t.buf = b""
    th = threading.Thread(target=drain, daemon=True)
    th.start()
    chunk = bytes(range(256)) * 16
    for _ in range(mb * 1024 * 1024 // len(chunk)):
        dev.write(chunk, timeout=60)
    time.sleep(0.5)
    stop.append(1)
    th.join(5)
    s.ctl("end-session", check=True)
    st.ended(t, 30)
    s.footer_reason(sid, 30)
    return sid


def local(s, sid):
    return os.path.join(s.storage, "sessions", sid + ".rec")


def wait(pred, timeout, what):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


def events(s, name):
    return [e for e in s.events() if e.get("event") == name]


PKI = []


def run_case(fn, pki_dir):
    d = st.tempfile.mkdtemp(prefix="custody-")
    if not PKI:
        PKI.append(Pki(pki_dir))
    pki = PKI[0]
    try:
        fn(d, pki)
    finally:
        if os.environ.get("SHIM_KEEP") is None:
            shutil.rmtree(d, ignore_errors=True)


# ---- tests ----------------------------------------------------------------

def test_delivered_byte_identical_and_verifiable(d, pki):
    ng = Nginx(d, pki).start()
    s = make_shim(pki, ng.port, keep=1)
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = session(s, t, dev, "t00@example.org")
        ev = s.wait_event("recording_uploaded", 30, session=sid)
        name = sid + ".rec"
        with open(local(s, sid), "rb") as f:
            mine = f.read()
        assert ng.object(name) == mine, "stored object differs"
        assert int(ev["size"]) == len(mine)
        import hashlib
        assert ev["sha256"] == hashlib.sha256(mine).hexdigest()
        # PUT, then the check: HEAD and GET
        methods = [r[0] for r in ng.requests() if r[1].endswith(name)]
        assert methods[:3] == ["PUT", "HEAD", "GET"], methods
        # keep_local_days: 1 keeps the delivered local copy for now
        assert os.path.exists(local(s, sid))
        # the central side verifies the stored copy without the shim
        stored = os.path.join(d, "store", "custody", SHIM_ID, name)
        r = s.ctl("session", "verify", stored)
        assert r.returncode == 0, (r.stdout, r.stderr)
        # session list marks it delivered; status shows an empty queue
        r = s.ctl("session", "list", check=True)
        line = [l for l in r.stdout.splitlines() if sid in l][0]
        assert "delivered" in line, r.stdout
        status = s.admin("status")
        assert re.search(r"^upload_queue: 0 recordings, 0 bytes", status,
                         re.M), status
        # no overwrite: the store refuses a second PUT of the object
        # (what a replayed upload would meet), and the shim's own retry
        # after a lost answer treats an identical object as delivered
        r = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
             "--cacert", pki.ca, "--cert", pki.client[0], "--key",
             pki.client[1], "--connect-to",
             "%s:%d:127.0.0.1:%d" % (STORE_NAME, ng.port, ng.port),
             "-T", "/etc/hostname",
             "https://%s:%d/custody/%s/%s" % (STORE_NAME, ng.port, SHIM_ID,
                                              name)],
            capture_output=True, text=True, timeout=30)
        assert r.stdout == "409", r.stdout
        assert ng.object(name) == mine
        # another shim's certificate cannot write into this directory
        r = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
             "--cacert", pki.ca, "--cert", pki.intruder[0], "--key",
             pki.intruder[1], "--connect-to",
             "%s:%d:127.0.0.1:%d" % (STORE_NAME, ng.port, ng.port),
             "-T", "/etc/hostname",
             "https://%s:%d/custody/%s/x.rec" % (STORE_NAME, ng.port,
                                                 SHIM_ID)],
            capture_output=True, text=True, timeout=30)
        assert r.stdout == "403", r.stdout
    except Exception:
        print(s.log()[-4000:], ng.errors())
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_local_copy_goes_only_after_confirmation(d, pki):
    """keep_local_days: 0 deletes right after delivery, and never before:
    against a store that keeps half of every object, the check fails,
    it is reported and retried, and the local copy stays."""
    bad = BadStore(pki)
    s = make_shim(pki, bad.port, keep=0)
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = session(s, t, dev, "t00@example.org", b"x" * 3000)
        wait(lambda: len(events(s, "upload_failed")) >= 2, 30,
             "two failed checks")
        ev = events(s, "upload_failed")[0]
        assert ev["session"] == sid
        assert "check: the store holds" in ev["reason"], ev
        assert bad.puts >= 2, "not retried"
        assert os.path.exists(local(s, sid)), "deleted before confirmation"
        assert not events(s, "recording_uploaded")
        r = s.ctl("session", "list", check=True)
        line = [l for l in r.stdout.splitlines() if sid in l][0]
        assert "not delivered" in line, r.stdout
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()
        bad.stop()
    # the same with nginx: delivered, then (and only then) deleted
    ng = Nginx(d, pki).start()
    s = make_shim(pki, ng.port, keep=0)
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = session(s, t, dev, "t01@example.org")
        s.wait_event("recording_uploaded", 30, session=sid)
        ev = s.wait_event("recording_deleted", 30, file=sid + ".rec")
        assert ev["reason"] == "delivered"
        assert not os.path.exists(local(s, sid))
        assert ng.stored() == [sid + ".rec"]
        # the upload came first: deletion after PUT, HEAD and GET
        lines = s.log().splitlines()
        i_up = [i for i, l in enumerate(lines) if "delivered (" in l][0]
        i_del = [i for i, l in enumerate(lines) if "deleted the local" in l][0]
        assert i_up < i_del
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_store_down_during_20_sessions(d, pki):
    ng = Nginx(d, pki)
    s = make_shim(pki, ng.port, ntech=20, keep=1,
                  extra="")
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sids = [session(s, t, dev, "t%02d@example.org" % i,
                        ("session %d\r" % i).encode()) for i in range(20)]
        wait(lambda: events(s, "upload_failed"), 20, "upload_failed")
        ev = events(s, "upload_failed")[0]
        assert "network PUT" in ev["reason"], ev
        status = s.admin("status")
        assert re.search(r"^upload_queue: 20 recordings", status, re.M), status
        assert ("upload_oldest: %s" % sids[0]) in status, status
        for sid in sids:
            assert os.path.exists(local(s, sid))
        ng.start()
        wait(lambda: len(events(s, "recording_uploaded")) >= 20, 90,
             "20 uploads")
        time.sleep(1)
        up = events(s, "recording_uploaded")
        assert sorted(e["session"] for e in up) == sorted(sids), up
        assert ng.stored() == sorted(sid + ".rec" for sid in sids)
        for sid in sids:
            with open(local(s, sid), "rb") as f:
                assert ng.object(sid + ".rec") == f.read()
        puts = [r for r in ng.requests() if r[0] == "PUT"]
        assert len(puts) == 20 and all(r[2] == "201" for r in puts), puts
        status = s.admin("status")
        assert re.search(r"^upload_queue: 0 recordings", status, re.M), status
    except Exception:
        print(s.log()[-4000:], ng.errors())
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_kill9_mid_upload(d, pki):
    """shimd killed while a large recording is on its way: after the
    restart the upload completes, once, byte-identical."""
    ng = Nginx(d, pki)
    # 1 MiB/s: the 6 MiB upload takes seconds, time to kill it
    s = make_shim(pki, ng.port, keep=1,
                  extra="  max_bytes_per_second: 1M\n")
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        # a recording of some megabytes (device output is cheap)
        sid = big_session(s, t, dev, "t00@example.org", 6)
        t.close()
        size = os.path.getsize(local(s, sid))
        ng.start()
        # kill -9 once the store has part of the body
        tmp = os.path.join(d, "tmp", "body")

        def partial():
            for f in os.listdir(tmp):
                if os.path.getsize(os.path.join(tmp, f)) > 0:
                    return True
            return False
        s.wait_log("custody: sealed recordings go to", 10)
        wait(partial, 60, "upload in flight")
        s.proc.kill()
        s.proc.wait(10)
        assert ng.stored() == [], "killed too late: already stored"
        assert not events(s, "recording_uploaded")
        s.start()
        ev = s.wait_event("recording_uploaded", 90, session=sid)
        assert int(ev["size"]) == size
        with open(local(s, sid), "rb") as f:
            assert ng.object(sid + ".rec") == f.read()
        assert ng.stored() == [sid + ".rec"]
        time.sleep(1)
        assert len(events(s, "recording_uploaded")) == 1
    except Exception:
        print(s.log()[-4000:], ng.errors())
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_wrong_ca_and_wrong_name_send_nothing(d, pki):
    ng = Nginx(d, pki).start()
    for what, kw, want in (
            ("wrong CA", {"ca": pki.other_ca}, "TLS PUT"),
            ("wrong name", {"server_name": "not-the-store.test"}, "TLS PUT")):
        s = make_shim(pki, ng.port, keep=0, **kw)
        try:
            s.start()
            dev = s.connect_dev()
            t = s.connect_tech()
            st.safe_epoch()
            sid = session(s, t, dev, "t00@example.org")
            ev = s.wait_event("upload_failed", 20, session=sid)
            assert ev["reason"].startswith(want), (what, ev)
            assert os.path.exists(local(s, sid)), what
            assert not [r for r in ng.requests() if r[0] == "PUT"], what
            assert ng.stored() == [], what
            r = s.ctl("upload", "test")
            assert r.returncode == 1 and "FAILED" in r.stdout, r.stdout
        except Exception:
            print(s.log()[-4000:], ng.errors())
            raise
        finally:
            s.cleanup()
    ng.stop()


def test_rejected_client_certificate(d, pki):
    """A client certificate the store does not trust: the store refuses
    (nginx answers 400), it is reported, retried, nothing deleted."""
    ng = Nginx(d, pki).start()
    s = make_shim(pki, ng.port, keep=0, client=pki.rogue)
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = session(s, t, dev, "t00@example.org")
        wait(lambda: len(events(s, "upload_failed")) >= 2, 30, "retries")
        ev = events(s, "upload_failed")[0]
        assert ev["session"] == sid
        assert ev.get("http_status") in ("400", 400), ev
        assert "client certificate" in ev["reason"], ev
        assert os.path.exists(local(s, sid))
        assert ng.stored() == []
    except Exception:
        print(s.log()[-4000:], ng.errors())
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_http_500_and_413(d, pki):
    ng = Nginx(d, pki).start()
    for path, status in (("err500", "500"), ("small", "413")):
        s = make_shim(pki, ng.port, keep=0, path=path)
        try:
            s.start()
            dev = s.connect_dev()
            t = s.connect_tech()
            st.safe_epoch()
            sid = session(s, t, dev, "t00@example.org", b"y" * 2000)
            wait(lambda: len(events(s, "upload_failed")) >= 2, 30, "retries")
            for ev in events(s, "upload_failed"):
                assert ev["session"] == sid
                assert str(ev.get("http_status")) == status, ev
                assert ev["reason"].startswith("HTTP %s on PUT" % status), ev
            assert os.path.exists(local(s, sid))
            assert not events(s, "recording_uploaded")
        except Exception:
            print(s.log()[-4000:], ng.errors())
            raise
        finally:
            s.cleanup()
    ng.stop()


def test_full_disk_refuses_and_deletes_nothing(d, pki):
    """Undelivered recordings fill the budget: retention (1 day) may not
    take even an old one, the next session is refused with the reason;
    once the store is back they are delivered, deleted, and sessions
    start again."""
    ng = Nginx(d, pki)
    s = make_shim(pki, ng.port, keep=0,
                  storage_extra="  max_bytes: 3000\n  retention_days: 1\n")
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = session(s, t, dev, "t00@example.org", b"z" * 1500)
        s.wait_event("upload_failed", 20, session=sid)
        # an old recording (by its name) that retention would delete
        old = "20200101T000000Z-old0"
        shutil.copy(local(s, sid), local(s, old))
        s.stop()
        s.start()
        dev = s.connect_dev(count=2)
        t = s.connect_tech()
        answer = s.auth(t, tid="t01@example.org")
        assert answer.startswith(b"Auth fail"), answer
        assert b"not yet delivered to central custody" in answer, answer
        assert "not yet delivered to central custody are kept" in s.log()
        assert os.path.exists(local(s, sid)) and os.path.exists(local(s, old))
        assert not events(s, "recording_deleted")
        ev = [e for e in events(s, "storage_low")][-1]
        assert "not yet delivered" in ev["reason"], ev
        # the store comes back: both delivered, then deleted locally
        ng.start()
        wait(lambda: len(events(s, "recording_uploaded")) >= 2, 60,
             "uploads")
        wait(lambda: not os.path.exists(local(s, sid)) and
             not os.path.exists(local(s, old)), 30, "local deletion")
        t.read_until(st.PROMPT, 10)
        sid2 = s.login(t, tid="t02@example.org")
        assert sid2
    except Exception:
        print(s.log()[-4000:], ng.errors())
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_outage_alarm_and_upload_test(d, pki):
    ng = Nginx(d, pki)
    s = make_shim(pki, ng.port, keep=1,
                  extra="  outage_alarm_seconds: 3\n")
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = session(s, t, dev, "t00@example.org")
        ev = s.wait_event("upload_outage", 20)
        assert int(ev["pending"]) == 1, ev
        assert "network" in ev.get("reason", ""), ev
        r = s.ctl("upload", "test")
        assert r.returncode == 1 and "FAILED" in r.stdout, r.stdout
        ng.start()
        s.wait_event("recording_uploaded", 30, session=sid)
        s.wait_event("upload_restored", 30)
        r = s.ctl("upload", "test")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "OK" in r.stdout and "TLS" in r.stdout, r.stdout
        probes = [n for n in ng.stored() if n.startswith("upload-test-")]
        assert len(probes) == 1, ng.stored()
        r = s.ctl("upload", "--bogus")
        assert r.returncode == 2, r
        r = s.ctl("upload", "test", "--help")
        assert r.returncode == 0 and "usage" in r.stdout, r
    except Exception:
        print(s.log()[-4000:], ng.errors())
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_decommission_delivers_or_refuses(d, pki):
    """shimctl decommission with shimd stopped: a recording still in the
    upload queue is delivered by the command itself when the store is up;
    with the store down it is refused, naming what would be lost."""
    ng = Nginx(d, pki)
    s = make_shim(pki, ng.port, ntech=2)
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = session(s, t, dev, "t00@example.org", b"last job\r")
        t.close()
        s.stop()
        r = s.ctl("decommission", "--yes", "--timeout", "1")
        assert r.returncode == 1 and "1 recording(s)" in r.stderr and \
            "not delivered" in r.stderr, r.stderr
        assert os.path.exists(local(s, sid))
        ng.start()
        r = s.ctl("decommission", "--yes", "--timeout", "1")
        assert r.returncode == 0, r.stderr
        assert ("delivered %s.rec" % sid) in r.stderr, r.stderr
        assert "undelivered_recordings 0\n" in r.stdout, r.stdout
        assert ng.stored() == [sid + ".rec"]
        assert not os.path.exists(local(s, sid))
    except Exception:
        print(s.log()[-4000:], ng.errors())
        raise
    finally:
        s.cleanup()
        ng.stop()


def test_config_errors_name_the_line(d, pki):
    cfg = os.path.join(d, "bad.yaml")
    with open(cfg, "w") as f:
        f.write("shim:\n  id: x\nserial:\n  technician_side_path: pty:/tmp/a\n"
                "  device_side_path: pty:/tmp/b\nstorage:\n  root: /tmp/x\n"
                "custody:\n  url: http://store/c\n  colour: blue\n")
    r = subprocess.run([st.SHIMD, "--check-config", cfg], capture_output=True,
                       text=True, timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "bad.yaml:9:" in out and "https://" in out, out
    assert "bad.yaml:10:" in out and "colour" in out, out
    # rules across keys name the section's first line
    assert re.search(r"bad.yaml:9: custody: needs 'custody.ca'", out), out


def main():
    st.need_binaries()
    if shutil.which("nginx") is None or shutil.which("openssl") is None:
        print("nginx and openssl are needed (scripts/install-deps.sh)")
        print("0 passed, 1 failed")
        sys.exit(1)
    pki_dir = st.tempfile.mkdtemp(prefix="custody-pki-")
    tests = [(n, (lambda f: lambda: run_case(f, pki_dir))(f))
             for n, f in st.tests_of(globals())]
    try:
        st.run(tests)
    finally:
        shutil.rmtree(pki_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

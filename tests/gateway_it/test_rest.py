"""REST API of the gateway: models, status codes, Location headers, auth, sessions, errors,
the kernel limit, command line and shutdown.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/test_rest.py
    SANDCELL_GW_TARGET=jupyter /usr/bin/python3 tests/gateway_it/test_rest.py   # reference
"""

import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid

import websocket

import harness
from harness import REFERENCE, ISO_MICRO_Z, ServerTestCase, sandcell_only, wait_until

ALLOWED_ORIGIN = "http://allowed.example"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
STATES = {"starting", "idle", "busy", "restarting", "dead", "unknown"}


def location_path(r):
    loc = r.headers.get("location")
    if loc is None:
        return None
    return urllib.parse.urlsplit(loc).path


class RestTests(ServerTestCase):
    server_options = {"allow-origin": ALLOWED_ORIGIN}
    jupyter_args = ("--ServerApp.allow_origin=" + ALLOWED_ORIGIN,)

    def check_kernel_model(self, m, kid=None):
        self.assertIsInstance(m, dict)
        for key in ("id", "name", "last_activity", "execution_state", "connections"):
            self.assertIn(key, m, "kernel model without %r: %r" % (key, m))
        if kid:
            self.assertEqual(m["id"], kid)
        self.assertRegex(m["id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                  r"[0-9a-f]{12}$")
        self.assertRegex(m["last_activity"], ISO_MICRO_Z,
                         "last_activity must be %Y-%m-%dT%H:%M:%S.%fZ (jupyter-server in "
                         "gateway mode parses exactly that)")
        self.assertIn(m["execution_state"], STATES)
        self.assertIsInstance(m["connections"], int)
        self.assertGreaterEqual(m["connections"], 0)

    # -- /api, kernelspecs ------------------------------------------------------

    def test_api_version(self):
        r = self.server.request("GET", "/api")
        self.assertEqual(r.status, 200, r)
        self.assertIn("json", r.headers.get("content-type", ""))
        self.assertIsInstance(r.json().get("version"), str)

    def test_kernelspecs(self):
        specs = self.server.get_json("/api/kernelspecs")
        self.assertIsInstance(specs.get("default"), str)
        self.assertIsInstance(specs.get("kernelspecs"), dict)
        self.assertIn(specs["default"], specs["kernelspecs"])
        for name, model in specs["kernelspecs"].items():
            self.assertEqual(model.get("name"), name)
            spec = model.get("spec")
            self.assertIsInstance(spec, dict, model)
            self.assertIsInstance(spec.get("display_name"), str, spec)
            self.assertEqual(spec.get("language", "").lower(), "python", spec)
            self.assertIsInstance(model.get("resources"), dict, model)
        if not REFERENCE:
            self.assertEqual(specs["default"], "sandcell")

    def test_kernelspec_by_name(self):
        specs = self.server.get_json("/api/kernelspecs")
        name = specs["default"]
        one = self.server.get_json("/api/kernelspecs/" + name)
        self.assertEqual(one["name"], name)
        self.assertEqual(one["spec"]["display_name"],
                         specs["kernelspecs"][name]["spec"]["display_name"])
        r = self.server.request("GET", "/api/kernelspecs/no-such-kernel-spec")
        self.assert_error_json(r, 404)

    # -- kernels ------------------------------------------------------------------

    def test_kernel_lifecycle(self):
        name = self.server.default_kernel
        r = self.server.request("POST", "/api/kernels", body={"name": name})
        self.assertEqual(r.status, 201, r)
        m = r.json()
        self.check_kernel_model(m)
        kid = m["id"]
        self.addCleanup(self._delete_quietly, kid)
        self.assertEqual(m["name"], name)
        self.assertEqual(location_path(r), "/api/kernels/" + kid)
        self.server.snapshot_kernels()

        listing = self.server.get_json("/api/kernels")
        self.assertIsInstance(listing, list)
        self.assertIn(kid, [k["id"] for k in listing])
        for k in listing:
            self.check_kernel_model(k)

        got = self.server.get_json("/api/kernels/" + kid)
        self.check_kernel_model(got, kid)
        self.assertEqual(got["name"], name)

        r = self.server.request("DELETE", "/api/kernels/" + kid)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        r = self.server.request("GET", "/api/kernels/" + kid)
        self.assert_error_json(r, 404)
        self.assertNotIn(kid, self.server.kernel_ids())
        r = self.server.request("DELETE", "/api/kernels/" + kid)
        self.assert_error_json(r, 404)

    def test_post_without_body_uses_default(self):
        for raw in (None, b"{}"):
            with self.subTest(body=raw):
                r = self.server.request("POST", "/api/kernels", raw=raw)
                self.assertEqual(r.status, 201, r)
                m = r.json()
                self.addCleanup(self._delete_quietly, m["id"])
                self.server.snapshot_kernels()
                self.assertEqual(m["name"], self.server.default_kernel)
                self.assertEqual(location_path(r), "/api/kernels/" + m["id"])

    def test_post_with_extra_fields(self):
        # jupyter-server in gateway mode sends {"name", "env": {KERNEL_*...}}; 2.x also "path".
        body = {"name": self.server.default_kernel, "path": "sub/dir",
                "env": {"KERNEL_USERNAME": "gwit", "KERNEL_WORKING_DIR": "/tmp"}}
        r = self.server.request("POST", "/api/kernels", body=body)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self._delete_quietly, r.json()["id"])
        self.server.snapshot_kernels()

    def test_interrupt_and_restart_endpoints(self):
        kid = self.shared_kernel()
        c = self.connect(kid)  # the kernel is ready: an interrupt cannot hit its start-up
        r = self.server.request("POST", "/api/kernels/%s/interrupt" % kid)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        r = self.server.request("POST", "/api/kernels/%s/restart" % kid)
        self.assertEqual(r.status, 200, r)
        self.check_kernel_model(r.json(), kid)
        self.server.snapshot_kernels()
        c.wait_ready()
        self.assertEqual(c.run("6*7").result_text, "42")

    def test_execution_state_and_connections(self):
        kid = self.shared_kernel()
        wait_until(lambda: self.server.get_json("/api/kernels/" + kid)["connections"] == 0,
                   10, what="connections == 0 before connecting")
        c = self.connect(kid)
        m = wait_until(lambda: (lambda m: m if m["connections"] == 1 else None)(
            self.server.get_json("/api/kernels/" + kid)), 10, what="connections == 1")
        self.assertEqual(m["execution_state"], "idle")
        before = m["last_activity"]
        mid = c.execute("import time; time.sleep(1.5)")
        c.wait_for(lambda x: x.msg_type == "execute_input" and x.parent_id == mid, 10)
        wait_until(lambda: self.server.get_json("/api/kernels/" + kid)["execution_state"] ==
                   "busy", 1.2, what="execution_state busy while a cell runs")
        c.collect(mid, 20)
        m = wait_until(lambda: (lambda m: m if m["execution_state"] == "idle" else None)(
            self.server.get_json("/api/kernels/" + kid)), 10, what="idle after the cell")
        self.assertGreater(m["last_activity"], before, "last_activity did not advance")
        c2 = self.connect(kid)
        wait_until(lambda: self.server.get_json("/api/kernels/" + kid)["connections"] == 2,
                   10, what="connections == 2")
        c.close()
        c2.close()
        wait_until(lambda: self.server.get_json("/api/kernels/" + kid)["connections"] == 0,
                   10, what="connections back to 0 after closing")

    def test_unknown_kernel_404(self):
        for method, path in (("GET", "/api/kernels/%s"), ("DELETE", "/api/kernels/%s"),
                             ("POST", "/api/kernels/%s/interrupt"),
                             ("POST", "/api/kernels/%s/restart")):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path % UNKNOWN_ID)
                if REFERENCE and path.endswith("restart"):
                    self.assertIn(r.status, (404, 500), r)  # jupyter-server 1.23: 500
                    continue
                self.assert_error_json(r, 404)

    def test_malformed_kernel_id_404(self):
        r = self.server.request("GET", "/api/kernels/not-a-kernel-id")
        self.assertEqual(r.status, 404, r)
        if not REFERENCE:  # jupyter-server answers an HTML page here (the route does not match)
            self.assert_error_json(r, 404)

    def test_unknown_path_404(self):
        r = self.server.request("GET", "/api/no-such-thing")
        self.assertEqual(r.status, 404, r)

    def test_method_not_allowed(self):
        kid = self.shared_kernel()
        for method, path in (("PUT", "/api/kernels"), ("DELETE", "/api/kernelspecs"),
                             ("PATCH", "/api/kernels/" + kid),
                             ("GET", "/api/kernels/%s/interrupt" % kid),
                             ("GET", "/api/kernels/%s/restart" % kid)):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path, raw=b"" if method != "GET" else None)
                self.assert_error_json(r, 405)
        self.assertIn(kid, self.server.kernel_ids())

    def test_query_string_cache_buster(self):
        # @jupyterlab/services appends ?<milliseconds> to every request.
        r = self.server.request("GET", "/api/kernels?%d" % int(time.time() * 1000))
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json(), list)
        r = self.server.request("GET", "/api/kernelspecs?%d" % int(time.time() * 1000))
        self.assertEqual(r.status, 200, r)

    # -- auth -----------------------------------------------------------------------

    def test_auth_rest(self):
        before = len(self.server.kernel_ids())
        for what, kw in (("no token", {"token": None}), ("wrong token", {"token": "wrong"}),
                         ("wrong token in query", {"token": "wrong", "auth": "query"}),
                         ("empty token", {"token": ""})):
            for method, path in (("GET", "/api/kernels"), ("POST", "/api/kernels"),
                                 ("GET", "/api/kernelspecs"), ("GET", "/api/sessions")):
                with self.subTest(what=what, method=method, path=path):
                    r = self.server.request(method, path, raw=b"{}" if method == "POST"
                                            else None, **kw)
                    self.assertIn(r.status, (401, 403), r)
                    self.assertIsInstance(r.json().get("message"), str, r)
        self.assertEqual(len(self.server.kernel_ids()), before,
                         "an unauthenticated POST started a kernel")
        r = self.server.request("GET", "/api/kernels", auth="header")
        self.assertEqual(r.status, 200, r)
        r = self.server.request("GET", "/api/kernels", auth="query")
        self.assertEqual(r.status, 200, r)
        r = self.server.request("GET", "/api/kernels", token=None,
                                headers={"Authorization": "token " + self.server.token[:-1]})
        self.assertIn(r.status, (401, 403), r)

    def test_auth_websocket(self):
        kid = self.shared_kernel()
        for what, kw in (("no token", {"token": None}), ("wrong token", {"token": "wrong"}),
                         ("wrong token in header", {"token": "wrong", "auth": "header"})):
            with self.subTest(what=what):
                with self.assertRaises(websocket.WebSocketBadStatusException) as cm:
                    self.server.connect(kid, **kw).close()
                self.assertIn(cm.exception.status_code, (401, 403))
        for auth in ("query", "header"):
            with self.subTest(auth=auth):
                c = self.connect(kid, auth=auth)
                self.assertEqual(c.run("1+2").result_text, "3")
                c.close()

    def test_websocket_unknown_kernel_404(self):
        with self.assertRaises(websocket.WebSocketBadStatusException) as cm:
            self.server.connect(UNKNOWN_ID).close()
        self.assertEqual(cm.exception.status_code, 404)

    def test_cors_allowed_origin(self):
        r = self.server.request("OPTIONS", "/api/kernels", token=None, headers={
            "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN)
        self.assertIn("authorization", r.headers.get("access-control-allow-headers", "").lower())
        self.assertIn("POST", r.headers.get("access-control-allow-methods", "").upper())
        r = self.server.request("GET", "/api/kernels", headers={"Origin": ALLOWED_ORIGIN})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN)

    @sandcell_only
    def test_cors_other_origin_not_allowed(self):
        r = self.server.request("GET", "/api/kernels", headers={"Origin": "http://evil.example"})
        self.assertNotEqual(r.headers.get("access-control-allow-origin"), "http://evil.example")
        self.assertNotEqual(r.headers.get("access-control-allow-origin"), "*")

    # -- sessions -------------------------------------------------------------------------

    def test_sessions_api(self):
        name = self.server.default_kernel
        path = "gwit-%s.ipynb" % uuid.uuid4().hex[:8]
        body = {"path": path, "name": "nb", "type": "notebook", "kernel": {"name": name}}
        r = self.server.request("POST", "/api/sessions", body=body)
        self.assertEqual(r.status, 201, r)
        s = r.json()
        self.server.snapshot_kernels()
        sid = s["id"]
        self.assertEqual(location_path(r), "/api/sessions/" + sid)
        self.assertEqual(s["path"], path)
        self.assertEqual(s["type"], "notebook")
        self.assertEqual(s["name"], "nb")
        self.check_kernel_model(s["kernel"])
        kid = s["kernel"]["id"]
        self.addCleanup(self._delete_quietly, kid)
        self.assertEqual(s["kernel"]["name"], name)
        self.assertIn(kid, self.server.kernel_ids())

        listing = self.server.get_json("/api/sessions")
        self.assertIn(sid, [x["id"] for x in listing])
        got = self.server.get_json("/api/sessions/" + sid)
        self.assertEqual((got["id"], got["path"], got["kernel"]["id"]), (sid, path, kid))

        # The same path again gives the existing session.
        r = self.server.request("POST", "/api/sessions", body=body)
        self.assertIn(r.status, (200, 201), r)
        self.assertEqual(r.json()["id"], sid)
        self.assertEqual(r.json()["kernel"]["id"], kid)

        # The kernel works through its session's kernel id.
        c = self.connect(kid)
        self.assertEqual(c.run("'s' * 3").result_text, "'sss'")
        c.close()

        r = self.server.request("PATCH", "/api/sessions/" + sid,
                                body={"path": "renamed-" + path, "name": "nb2"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "renamed-" + path)
        self.assertEqual(r.json()["name"], "nb2")
        self.assertEqual(r.json()["kernel"]["id"], kid)
        self.assertEqual(self.server.get_json("/api/sessions/" + sid)["path"], "renamed-" + path)

        r = self.server.request("DELETE", "/api/sessions/" + sid)
        self.assertEqual(r.status, 204, r)
        self.assert_error_json(self.server.request("GET", "/api/sessions/" + sid), 404)
        self.assertNotIn(sid, [x["id"] for x in self.server.get_json("/api/sessions")])
        wait_until(lambda: kid not in self.server.kernel_ids(), 20,
                   what="session's kernel shut down with the session")

    def test_session_with_existing_kernel(self):
        kid = self.shared_kernel()
        body = {"path": "existing-%s" % uuid.uuid4().hex[:8], "type": "console",
                "name": "", "kernel": {"id": kid}}
        r = self.server.request("POST", "/api/sessions", body=body)
        self.assertEqual(r.status, 201, r)
        s = r.json()
        self.assertEqual(s["kernel"]["id"], kid)
        self.assertEqual(s["type"], "console")
        r = self.server.request("DELETE", "/api/sessions/" + s["id"])
        self.assertEqual(r.status, 204, r)
        if kid in self.server.kernel_ids():
            return
        # Deleting the session shut the shared kernel down (jupyter-server does): start anew.
        type(self)._kernels.pop("a", None)

    def test_sessions_errors(self):
        for body in ({"type": "notebook"}, {"path": "x.ipynb"}):
            with self.subTest(body=body):
                self.assert_error_json(self.server.request("POST", "/api/sessions", body=body),
                                       400)
        self.assert_error_json(self.server.request("POST", "/api/sessions", raw=b"garbage{"),
                               400)
        for method in ("GET", "PATCH", "DELETE"):
            with self.subTest(method=method):
                r = self.server.request(method, "/api/sessions/" + UNKNOWN_ID,
                                        body={"path": "y"} if method == "PATCH" else None)
                self.assertEqual(r.status, 404, r)

    # -- bad bodies -------------------------------------------------------------------------

    def test_bad_json_bodies_400(self):
        before = self.server.kernel_ids()
        for raw in (b"{not json", b"\xff\xfe\x00garbage", b'{"name": '):
            with self.subTest(raw=raw):
                r = self.server.request("POST", "/api/kernels", raw=raw,
                                        headers={"Content-Type": "application/json"})
                if REFERENCE and raw.startswith(b"\xff"):
                    self.assertGreaterEqual(r.status, 400, r)  # jupyter-server: 500
                    continue
                self.assert_error_json(r, 400)
        self.assertEqual(sorted(self.server.kernel_ids()), sorted(before))

    @sandcell_only
    def test_wrong_json_types_400(self):
        before = self.server.kernel_ids()
        for body in ([1, 2], "name", 5, {"name": 5}, {"name": None, "env": "x"},
                     {"name": self.server.default_kernel, "env": [1]}):
            with self.subTest(body=body):
                self.assert_error_json(self.server.request("POST", "/api/kernels", body=body),
                                       400)
        for body in ([], {"path": 1, "type": "notebook"}, {"path": "p", "type": 2},
                     {"path": "p", "type": "notebook", "kernel": "k"}):
            with self.subTest(sessions=body):
                self.assert_error_json(self.server.request("POST", "/api/sessions", body=body),
                                       400)
        self.assertEqual(sorted(self.server.kernel_ids()), sorted(before))

    @sandcell_only
    def test_unknown_kernel_name(self):
        r = self.server.request("POST", "/api/kernels", body={"name": "no-such-kernel"})
        self.assertIn(r.status, (400, 404, 501), r)
        self.assertIsInstance(r.json().get("message"), str)
        self.assertIn("no-such-kernel", r.json()["message"])

    @sandcell_only
    def test_body_too_large_413(self):
        big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        r = self.server.request("POST", "/api/kernels", raw=big,
                                headers={"Content-Type": "application/json"})
        self.assert_error_json(r, 413)
        # A Content-Length far over the cap is refused before any body is sent.
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(("POST /api/kernels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Authorization: token %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: 10000000000\r\n\r\n{" % self.server.token).encode())
            data = b""
            deadline = time.monotonic() + 10
            while b"\r\n" not in data and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertRegex(data.split(b"\r\n")[0].decode(errors="replace"), r"^HTTP/1\.[01] 413")
        self.assertEqual(self.server.request("GET", "/api").status, 200)


@sandcell_only
class MaxKernelsTests(ServerTestCase):
    server_options = {"max-kernels": 2}

    def test_limit_is_atomic(self):
        def post(_):
            return self.server.request("POST", "/api/kernels",
                                       body={"name": self.server.default_kernel}, timeout=90)

        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            results = list(ex.map(post, range(6)))
        self.server.snapshot_kernels()
        ok = [r for r in results if r.status == 201]
        for r in ok:
            self.addCleanup(self._delete_quietly, r.json()["id"])
        refused = [r for r in results if r.status != 201]
        self.assertEqual(len(ok), 2, "expected exactly 2 of 6 concurrent starts to succeed "
                         "with --max-kernels 2, got %r" % results)
        for r in refused:
            self.assert_error_json(r, 503)
        self.assertEqual(sorted(self.server.kernel_ids()),
                         sorted(r.json()["id"] for r in ok))
        self.assert_error_json(self.server.request(
            "POST", "/api/sessions", body={"path": "p", "type": "notebook",
                                           "kernel": {"name": self.server.default_kernel}}),
            503)
        # A slot frees when a kernel is shut down.
        self.assertEqual(self.server.delete_kernel(ok[0].json()["id"]).status, 204)
        r = post(0)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self._delete_quietly, r.json()["id"])
        self.server.snapshot_kernels()
        self.assert_error_json(post(0), 503)
        # The kernels that did start work.
        c = self.connect(r.json()["id"])
        self.assertEqual(c.run("2**10").result_text, "1024")


@sandcell_only
class CommandLineTests(unittest.TestCase):
    def test_help_documents_options(self):
        harness.check_target()
        r = subprocess.run([harness.GATEWAY_EXE, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30, env=harness.clean_env())
        self.assertEqual(r.returncode, 0, r.stdout)
        text = r.stdout.decode(errors="replace")
        for opt in ("--ip", "--port", "--token", "--runtime-dir", "--max-kernels",
                    "--cull-idle-timeout", "--cull-interval", "--max-ws-frame",
                    "--ws-queue-cap", "--replay-cap", "--allow-origin", "--restart-limit",
                    "--kernel-start-timeout"):
            self.assertIn(opt, text)

    def test_bad_option_fails_clearly(self):
        harness.check_target()
        for argv in (["--no-such-option"], ["--port", "notaport"], ["--max-kernels", "-3"]):
            with self.subTest(argv=argv):
                r = subprocess.run([harness.GATEWAY_EXE] + argv, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=30,
                                   env=harness.clean_env())
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(argv[0].encode(), r.stderr + r.stdout)

    def test_generated_token(self):
        srv = harness.Server(name="gentoken", generate_token=True).start()
        try:
            self.assertGreaterEqual(len(srv.token), 16)
            self.assertEqual(srv.request("GET", "/api/kernels").status, 200)
            self.assertIn(srv.request("GET", "/api/kernels", token=None).status, (401, 403))
        finally:
            srv.stop()


@sandcell_only
class ShutdownTests(unittest.TestCase):
    def _run(self, sig):
        srv = harness.Server(name="shutdown").start()
        try:
            kids = [srv.start_kernel()["id"] for _ in range(2)]
            c = srv.connect(kids[0])
            c.wait_ready()
            c.execute("import time; time.sleep(60)")
            c.wait_for(lambda m: m.msg_type == "execute_input", 10)
            c2 = srv.connect(kids[1])
            c2.wait_ready()
            srv.snapshot_kernels()
            self.assertGreaterEqual(len(srv.kernel_pids), 2, "no kernel processes found "
                                    "under the gateway")
            t0 = time.monotonic()
            problems = srv.stop(sig=sig, check=False)
            self.assertEqual(problems, [])
            self.assertEqual(srv.returncode, 0, "exit status after %s" % sig.name)
            self.assertLess(time.monotonic() - t0, 15, "shutdown took too long")
            c.close()
            c2.close()
        finally:
            if srv.proc is not None:
                srv.kill()

    def test_sigterm(self):
        self._run(signal.SIGTERM)

    def test_sigint(self):
        self._run(signal.SIGINT)


@sandcell_only
class PageTests(ServerTestCase):
    """The notebook page: served at / and /static/NAME without a token, revalidated by ETag,
    with headers that keep its token and foreign scripts out; nothing else reachable."""

    def test_page_and_its_assets(self):
        r = self.server.request("GET", "/", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/html"), r.headers)
        csp = r.headers.get("content-security-policy", "")
        self.assertIn("script-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertEqual(r.headers.get("referrer-policy"), "no-referrer")
        html = r.body.decode("utf-8")
        assets = re.findall(r'(?:src|href)="(static/[^"]+)"', html)
        self.assertTrue(any(a.endswith(".js") for a in assets), assets)
        self.assertTrue(any(a.endswith(".css") for a in assets), assets)
        for a in assets:
            with self.subTest(asset=a):
                got = self.server.request("GET", "/" + a, token=None)
                self.assertEqual(got.status, 200, got)
                want = "text/javascript" if a.endswith(".js") else "text/css"
                if a.endswith((".js", ".css")):
                    self.assertTrue(got.headers["content-type"].startswith(want), got.headers)
                self.assertGreater(len(got.body), 0)
                # A reload with the ETag costs a 304 and no body.
                etag = got.headers["etag"]
                again = self.server.request("GET", "/" + a, token=None,
                                            headers={"If-None-Match": etag})
                self.assertEqual(again.status, 304, again)
                self.assertEqual(again.body, b"")

    def test_nothing_else_is_reachable(self):
        for path in ("/static/", "/static/.hidden", "/static/a/b.js", "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                     "/static/nope.js", "/index.htm"):
            with self.subTest(path=path):
                r = self.server.request("GET", path, token=None)
                self.assertIn(r.status, (403, 404), r)
                self.assertNotIn(b"<html", r.body.lower())
                self.assertNotIn(b"root:", r.body)
        # The page is public; the API behind it is not.
        r = self.server.request("GET", "/api/kernels", token=None)
        self.assertEqual(r.status, 403, r)
        r = self.server.request("POST", "/", raw=b"{}")
        self.assertNotEqual(r.status, 200, r)

    def test_kernel_usage_for_the_meter(self):
        kid = self.shared_kernel()
        m = self.server.get_json("/api/kernels/" + kid)
        u = m["sandcell_usage"]
        self.assertGreaterEqual(u["cpu_time"], 0)
        # An idle interpreter: megabytes, not nothing and not gigabytes.
        self.assertGreater(u["memory_bytes"], 4 << 20, u)
        self.assertLess(u["memory_bytes"], 400 << 20, u)
        self.assertTrue(u["memory_limit_bytes"] is None or u["memory_limit_bytes"] > 0, u)
        # The list stays lean.
        for k in self.server.get_json("/api/kernels"):
            self.assertNotIn("sandcell_usage", k)

    def test_page_under_a_base_url(self):
        # Behind a proxy at /nb/: the page and its assets are there, and /nb (no slash, where
        # the page's relative links would miss) redirects to /nb/.
        import http.client
        with tempfile.TemporaryDirectory() as d:
            proc = subprocess.Popen([harness.GATEWAY_EXE, "--ip", "127.0.0.1", "--port", "0",
                                     "--token", "T", "--base-url", "/nb/", "--runtime-dir", d,
                                     "--history-db", ":memory:", "--kernel-pool", "0"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, env={k: v for k, v in os.environ.items()
                                                    if not k.startswith("SANDCELL_")})
            try:
                line = proc.stdout.readline()
                m = re.search(r"http://127\.0\.0\.1:(\d+)/nb/\?token=T$", line.strip())
                self.assertIsNotNone(m, line)
                port = int(m.group(1))

                def get(path):
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    try:
                        c.request("GET", path)
                        r = c.getresponse()
                        return r.status, r.getheader("location"), r.read()
                    finally:
                        c.close()

                status, location, _ = get("/nb")
                self.assertEqual((status, location), (308, "/nb/"))
                status, _, body = get("/nb/")
                self.assertEqual(status, 200)
                for asset in re.findall(rb'src="(static/[^"]+)"', body):
                    self.assertEqual(get("/nb/" + asset.decode())[0], 200, asset)
                self.assertEqual(get("/static/notebook.js")[0], 404)
            finally:
                proc.terminate()
                proc.wait(15)

    def test_web_dir_serves_files_from_disk(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "index.html"), "w") as f:
                f.write("<!doctype html><title>from disk</title>")
            with open(os.path.join(d, "x.js"), "w") as f:
                f.write("var fromDisk = 1;")
            os.symlink("/etc/passwd", os.path.join(d, "passwd.txt"))
            srv = harness.Server({"web-dir": d}, name="webdir").start()
            try:
                r = srv.request("GET", "/", token=None)
                self.assertEqual(r.status, 200, r)
                self.assertIn(b"from disk", r.body)
                self.assertEqual(r.headers.get("cache-control"), "no-store")
                r = srv.request("GET", "/static/x.js", token=None)
                self.assertEqual(r.body, b"var fromDisk = 1;")
                # Edited on disk, served at once.
                with open(os.path.join(d, "x.js"), "w") as f:
                    f.write("var fromDisk = 2;")
                r = srv.request("GET", "/static/x.js", token=None)
                self.assertEqual(r.body, b"var fromDisk = 2;")
                r = srv.request("GET", "/static/passwd.txt", token=None)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"root:", r.body)
                # A FIFO (which would block an open() until written) is refused at once.
                os.mkfifo(os.path.join(d, "fifo.js"))
                r = srv.request("GET", "/static/fifo.js", token=None, timeout=10)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(srv.request("GET", "/static/x.js", token=None).status, 200)
            finally:
                srv.stop(check=False)


if __name__ == "__main__":
    harness.main()

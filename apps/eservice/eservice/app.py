"""The reference e-service: citizens submit a procedure with a document; agents review it.

A Flask application (Debian's python3-flask), served by role app (gunicorn, TLS, sandboxed). Its
secrets (the key-encryption keys and the database password) live in the process's memory only:
role app's key holder (``rempart_keyholder``) receives them from ``playbooks/unlock.yml``. Until
then the service is sealed: every page that needs the database or a document answers 503, and
``/readyz`` says why.

Settings: a JSON file named by the environment variable ESERVICE_SETTINGS (role app writes it from
``app_settings``): the libpq service of the database, the procedures, the agents and their password
hashes, the largest document accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.utils import secure_filename

from eservice import crypto, passwords

try:  # role app puts the key holder on the application's path
    import rempart_keyholder as keyholder
except ImportError:  # pragma: no cover - outside role app (unit tests bring their own)
    keyholder = None

# Kinds of documents accepted, recognised by their first bytes (never by the name the client gave).
SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SESSION_COOKIE = "__Host-eservice-session"
CSRF_COOKIE = "__Host-eservice-csrf"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "X-Frame-Options": "DENY",
}
SCHEMA = Path(__file__).with_name("schema.sql")


class Sealed(Exception):
    """The service's keys are not in memory: an operator must run playbooks/unlock.yml."""


class Unavailable(Exception):
    """The database did not answer or is not writable (for example during a failover)."""


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class State:
    """What the process holds: the settings, the keys once unlocked, the database connections."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.keyring: crypto.Keyring | None = None
        self._idle: list = []
        self._lock = threading.Lock()

    # The key holder calls this with every secret delivered; a refusal leaves the former ones.
    def load(self, secrets_: dict) -> None:
        keyring = crypto.Keyring.from_secrets(secrets_)
        if not secrets_.get("database_password"):
            raise crypto.KeyUnavailable("the database password (database_password) is missing")
        with self._lock:
            self.keyring = keyring
        self._flush()  # connections made with a former password

    def _secret(self, name: str) -> str | None:
        return keyholder.get(name) if keyholder else None

    def require_keys(self) -> crypto.Keyring:
        if self.keyring is None or not self._secret("database_password"):
            raise Sealed()
        return self.keyring

    @contextmanager
    def transaction(self):
        """A cursor in one transaction on the primary: committed at the end of the block, or nothing."""
        self.require_keys()
        conn = None
        try:
            conn = self._checkout()
            with conn, conn.cursor() as cur:
                yield cur
        except psycopg2.Error as error:
            if conn is not None:
                conn.close()
            if isinstance(error, (psycopg2.IntegrityError, psycopg2.DataError, psycopg2.ProgrammingError)):
                raise
            # Lost connection, a server that became a standby, a failover under way: the client may
            # retry; the other idle connections went to the same server.
            self._flush()
            raise Unavailable(str(error).strip().splitlines()[0] if str(error).strip() else "database unavailable") from None
        except BaseException:
            if conn is not None and not conn.closed:
                conn.rollback()
                self._give_back(conn)
            raise
        else:
            self._give_back(conn)

    def _checkout(self):
        """An idle connection that still reaches the primary (checked with one round trip: after a
        failover or a switchover the idle ones point at a lost server or a standby), or a new one."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None and not conn.closed:
            try:
                with conn.cursor() as cur:
                    cur.execute("select pg_is_in_recovery()")
                    standby = cur.fetchone()[0]
                conn.rollback()
                if not standby:
                    return conn
            except psycopg2.Error:
                pass
            conn.close()
            self._flush()
        return psycopg2.connect(service=self.settings["database_service"], password=self._secret("database_password"),
                                application_name=self.settings.get("name", "eservice"), connect_timeout=3)

    def _flush(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _give_back(self, conn) -> None:
        with self._lock:
            if not conn.closed and len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()

    # --- actions run by role app through the key holder (root only) -------------------------------

    def status(self) -> dict:
        return {"sealed": self.keyring is None, "current_key": self.keyring.current_id if self.keyring else None,
                "keys": self.keyring.ids if self.keyring else []}

    def migrate(self) -> dict:
        """The schema, once per version of schema.sql (its digest is recorded)."""
        schema = SCHEMA.read_text(encoding="utf-8")
        digest = hashlib.sha256(schema.encode()).hexdigest()
        with self.transaction() as cur:
            cur.execute("select pg_advisory_xact_lock(4242)")
            cur.execute("create table if not exists schema_version (digest text primary key, applied_at timestamptz not null default now())")
            cur.execute("select 1 from schema_version where digest = %s", (digest,))
            if cur.fetchone():
                return {"applied": False, "schema": digest[:16]}
            cur.execute(schema)
            cur.execute("insert into schema_version (digest) values (%s)", (digest,))
            return {"applied": True, "schema": digest[:16]}

    def keys_in_use(self) -> dict:
        with self.transaction() as cur:
            cur.execute("select kek_id, count(*) from documents group by kek_id order by kek_id")
            return {"documents_by_key": dict(cur.fetchall()), "current_key": self.require_keys().current_id}

    def rewrap(self, batch: int = 200) -> dict:
        """Every document's data key wrapped by the current KEK, a batch per transaction."""
        keyring, done = self.require_keys(), 0
        while True:
            with self.transaction() as cur:
                cur.execute("select id, kek_id, wrapped_key from documents where kek_id <> %s limit %s for update skip locked",
                            (keyring.current_id, batch))
                rows = cur.fetchall()
                for document_id, kek_id, wrapped in rows:
                    cur.execute("update documents set kek_id = %s, wrapped_key = %s where id = %s",
                                (keyring.current_id, keyring.rewrap(kek_id, wrapped), document_id))
            done += len(rows)
            if len(rows) < batch:
                break
        return {"rewrapped": done, **self.keys_in_use()}


def _one(cur) -> dict | None:
    """The next row as a dict named by the query's own columns (the select list says them once)."""
    row = cur.fetchone()
    return None if row is None else dict(zip((c.name for c in cur.description), row))


def _all(cur) -> list[dict]:
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in cur]


def _receipt() -> str:
    return "R-" + "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(10))


def _sniff(head: bytes) -> tuple[str, str] | None:
    return next(((kind, ext) for magic, kind, ext in SIGNATURES if head.startswith(magic)), None)


def create_app(settings: dict | None = None) -> Flask:
    if settings is None:
        settings = json.loads(Path(os.environ["ESERVICE_SETTINGS"]).read_text(encoding="utf-8"))
    state = State(settings)
    agents = {agent["login"]: agent for agent in settings.get("agents", [])}
    procedures: dict = settings["procedures"]
    statuses: list = settings.get("statuses", ["received", "in-review", "accepted", "rejected"])
    max_document = int(settings.get("max_document_bytes", 10 * 1024 * 1024))
    idle = timedelta(minutes=int(settings.get("session_idle_minutes", 30)))

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_document + 64 * 1024
    app.extensions["eservice"] = state
    if keyholder:
        keyholder.register(loader=state.load, status=state.status,
                           actions={"migrate": state.migrate, "rewrap": state.rewrap, "keys-in-use": state.keys_in_use})

    def wants_json() -> bool:
        return request.accept_mimetypes.best == "application/json"

    def problem(code: int, message: str, **headers) -> Response:
        if wants_json() or request.path in ("/readyz",):
            response = jsonify(error=message)
        else:
            response = Response(render_template("error.html", code=code, message=message), mimetype="text/html")
        response.status_code = code
        response.headers.update(headers)
        return response

    @app.errorhandler(Sealed)
    def sealed(_):
        return problem(503, "The service is sealed: its keys are not in memory yet. Try again later.", **{"Retry-After": "30"})

    @app.errorhandler(Unavailable)
    def unavailable(_):
        return problem(503, "The database is not available for a moment. Try again.", **{"Retry-After": "2"})

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_):
        return problem(413, f"The document is larger than {max_document // (1024 * 1024)} MiB.")

    @app.errorhandler(HTTPException)
    def http_error(error):
        return problem(error.code or 500, error.description or error.name)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.update(HEADERS)
        if request.path.startswith(("/agent", "/status", "/submissions")):
            response.headers["Cache-Control"] = "no-store"
        return response

    # --- health -----------------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz():
        return jsonify(alive=True)

    @app.get("/readyz")
    def readyz():
        found = {"sealed": state.keyring is None or not state._secret("database_password"), "database": "unknown"}
        if not found["sealed"]:
            try:
                with state.transaction() as cur:
                    cur.execute("select not pg_is_in_recovery() and current_setting('transaction_read_only') = 'off'")
                    found["database"] = "writable" if cur.fetchone()[0] else "read-only"
            except Unavailable:
                found["database"] = "unavailable"
        ready = not found["sealed"] and found["database"] == "writable"
        response = jsonify(ready=ready, **found)
        response.status_code = 200 if ready else 503
        return response

    # --- citizens ---------------------------------------------------------------------------------

    @app.get("/")
    def home():
        return render_template("submit.html", procedures=procedures, max_mib=max_document // (1024 * 1024))

    @app.post("/submissions")
    def submit():
        form, errors = request.form, []
        procedure = form.get("procedure", "")
        full_name = form.get("full_name", "").strip()
        email = form.get("email", "").strip()
        message = form.get("message", "").strip()
        upload = request.files.get("document")
        if procedure not in procedures:
            errors.append("procedure: choose one of the list")
        if not 1 <= len(full_name) <= 200:
            errors.append("full_name: between 1 and 200 characters")
        if not EMAIL.match(email):
            errors.append("email: an e-mail address")
        if len(message) > 4000:
            errors.append("message: at most 4000 characters")
        content = upload.read(max_document + 1) if upload else b""
        kind = _sniff(content[:16])
        if not content:
            errors.append("document: a PDF, PNG or JPEG file is required")
        elif len(content) > max_document:
            return problem(413, f"The document is larger than {max_document // (1024 * 1024)} MiB.")
        elif kind is None:
            errors.append("document: only PDF, PNG and JPEG files are accepted (checked by content)")
        if errors:
            if wants_json():
                return jsonify(errors=errors), 422
            return render_template("submit.html", procedures=procedures, errors=errors, form=form,
                                   max_mib=max_document // (1024 * 1024)), 422
        keyring = state.require_keys()
        submission_id, document_id = uuid.uuid4(), uuid.uuid4()
        token, receipt = secrets.token_urlsafe(32), _receipt()
        sealed_doc = keyring.seal(content, str(document_id))
        filename = secure_filename(upload.filename or "") or f"document{kind[1]}"
        with state.transaction() as cur:  # both rows, or neither
            cur.execute("insert into submissions (id, receipt, secret_hash, procedure, full_name, email, message) "
                        "values (%s, %s, %s, %s, %s, %s, %s)",
                        (str(submission_id), receipt, _sha256(token), procedure, full_name, email, message))
            cur.execute("insert into documents (id, submission_id, filename, content_type, size, kek_id, wrapped_key, nonce, ciphertext) "
                        "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (str(document_id), str(submission_id), filename[:200], kind[0], len(content), sealed_doc.kek_id,
                         sealed_doc.wrapped_key, sealed_doc.nonce, sealed_doc.ciphertext))
        status_url = f"/status?t={token}"
        if wants_json():
            return jsonify(receipt=receipt, status_url=status_url, document_id=str(document_id)), 201
        return render_template("receipt.html", receipt=receipt, status_url=status_url), 201

    @app.get("/status")
    def status():
        token = request.args.get("t", "")
        if not 20 <= len(token) <= 100:
            abort(404)
        with state.transaction() as cur:
            cur.execute("select receipt, procedure, status, created_at, updated_at from submissions where secret_hash = %s",
                        (_sha256(token),))
            found = _one(cur)
        if found is None:
            abort(404, "No submission has this link.")
        if wants_json():
            return jsonify({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in found.items()})
        return render_template("status.html", submission=found, procedures=procedures)

    # --- agents -----------------------------------------------------------------------------------

    def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, secure=True, httponly=True, samesite="Strict", path="/")

    def current_agent() -> dict | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            return None
        with state.transaction() as cur:
            cur.execute("delete from agent_sessions where last_seen < now() - %s or created_at < now() - interval '12 hours'", (idle,))
            cur.execute("update agent_sessions set last_seen = now() where token_hash = %s returning login, csrf_token",
                        (_sha256(token),))
            row = cur.fetchone()
        if row is None or row[0] not in agents:
            return None
        return {"login": row[0], "name": agents[row[0]].get("name", row[0]), "csrf": row[1]}

    def agent_required(check_csrf: bool = False) -> dict:
        state.require_keys()
        agent = current_agent()
        if agent is None:
            abort(401, "Sign in first.")
        if check_csrf and not hmac.compare_digest(request.form.get("csrf", ""), agent["csrf"]):
            abort(403, "The form has expired: open the page again.")
        g.agent = agent
        return agent

    @app.errorhandler(401)
    def sign_in_first(_):
        if wants_json():
            return jsonify(error="sign in first"), 401
        return redirect("/agent/login", code=303)

    @app.get("/agent/login")
    def login_form():
        csrf = secrets.token_urlsafe(24)
        response = Response(render_template("login.html", csrf=csrf))
        set_cookie(response, CSRF_COOKIE, csrf, max_age=3600)
        return response

    @app.post("/agent/login")
    def login():
        state.require_keys()
        csrf = request.form.get("csrf", "")
        if not csrf or not hmac.compare_digest(csrf, request.cookies.get(CSRF_COOKIE, "")):
            abort(403, "The form has expired: open the sign-in page again.")
        login_name, password = request.form.get("login", ""), request.form.get("password", "")
        agent = agents.get(login_name)
        good = passwords.verify(password, agent["password_hash"] if agent else passwords.DUMMY)
        if not (agent and good):
            return render_template("login.html", csrf=csrf, error="Unknown login or wrong password."), 403
        token = secrets.token_urlsafe(32)
        with state.transaction() as cur:
            cur.execute("insert into agent_sessions (token_hash, login, csrf_token) values (%s, %s, %s)",
                        (_sha256(token), login_name, secrets.token_urlsafe(24)))
        response = redirect("/agent/", code=303)
        set_cookie(response, SESSION_COOKIE, token)
        response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="Strict")
        return response

    @app.post("/agent/logout")
    def logout():
        agent_required(check_csrf=True)
        with state.transaction() as cur:
            cur.execute("delete from agent_sessions where token_hash = %s", (_sha256(request.cookies[SESSION_COOKIE]),))
        response = redirect("/agent/login", code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, samesite="Strict")
        return response

    @app.get("/agent/")
    def agent_home():
        agent = agent_required()
        with state.transaction() as cur:
            cur.execute("select s.id, s.receipt, s.procedure, s.full_name, s.status, s.created_at, count(d.id) as documents "
                        "from submissions s left join documents d on d.submission_id = s.id "
                        "group by s.id order by s.created_at desc limit 200")
            rows = _all(cur)
        return render_template("agent_list.html", agent=agent, submissions=rows, procedures=procedures)

    def _uuid(text: str) -> str:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            abort(404)

    @app.get("/agent/submissions/<sid>")
    def agent_submission(sid):
        agent = agent_required()
        with state.transaction() as cur:
            cur.execute("select id, receipt, procedure, full_name, email, message, status, created_at from submissions where id = %s",
                        (_uuid(sid),))
            submission = _one(cur)
            if submission is None:
                abort(404, "No such submission.")
            cur.execute("select id, filename, content_type, size from documents where submission_id = %s order by created_at",
                        (submission["id"],))
            documents = _all(cur)
        return render_template("agent_submission.html", agent=agent, submission=submission, documents=documents,
                               procedures=procedures, statuses=statuses)

    @app.get("/agent/documents/<did>")
    def agent_document(did):
        agent_required()
        keyring = state.require_keys()
        with state.transaction() as cur:
            cur.execute("select id, filename, content_type, kek_id, wrapped_key, nonce, ciphertext from documents where id = %s",
                        (_uuid(did),))
            row = cur.fetchone()
        if row is None:
            abort(404, "No such document.")
        try:
            content = keyring.open(crypto.Sealed(row[3], row[4], row[5], row[6]), str(row[0]))
        except crypto.KeyUnavailable:
            raise Sealed() from None
        response = Response(content, mimetype=row[2])
        response.headers["Content-Disposition"] = f'attachment; filename="{row[1]}"'
        return response

    @app.post("/agent/submissions/<sid>/status")
    def agent_status(sid):
        agent = agent_required(check_csrf=True)
        new = request.form.get("status", "")
        if new not in statuses:
            abort(422, f"status: one of {', '.join(statuses)}")
        with state.transaction() as cur:
            cur.execute("update submissions set status = %s, updated_at = now() where id = %s returning id", (new, _uuid(sid)))
            if cur.fetchone() is None:
                abort(404, "No such submission.")
            cur.execute("insert into status_history (submission_id, status, agent) values (%s, %s, %s)",
                        (_uuid(sid), new, agent["login"]))
        return redirect(f"/agent/submissions/{_uuid(sid)}", code=303)

    return app

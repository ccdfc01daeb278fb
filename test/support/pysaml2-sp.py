#!/usr/bin/python3
"""A SAML service provider built on pysaml2 (Debian python3-pysaml2), for Ferry's interop tests.

Usage: pysaml2-sp.py IDP_METADATA_FILE KEY_PEM CERT_PEM

Listens on 127.0.0.1 on a free port and prints "LISTENING <port>" once ready. Routes:
  GET  /metadata   the SP's metadata (Ferry imports it)
  GET  /login      starts SP-initiated SSO: a signed HTTP-Redirect AuthnRequest. Query: force=1,
                   passive=1, ctx=<AuthnContextClassRef> (repeatable), cmp=<comparison>, relay=<RelayState>
  POST /acs        the HTTP-POST assertion consumer service: pysaml2 verifies the response with Ferry's
                   metadata and the page shows the outcome as JSON in <pre id="result">
Everything pysaml2 decides is its own: this script only wires it to HTTP.
"""
import html
import json
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.response import StatusError
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

idp_metadata, key_file, cert_file = sys.argv[1:4]
server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
port = server.server_address[1]
base = f"http://127.0.0.1:{port}"

config = SPConfig()
config.load(
    {
        "entityid": f"{base}/metadata",
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "key_file": key_file,
        "cert_file": cert_file,
        "metadata": {"local": [idp_metadata]},
        "allow_unknown_attributes": True,
        "accepted_time_diff": 60,
        "service": {
            "sp": {
                "name": "pysaml2 interop SP",
                "endpoints": {"assertion_consumer_service": [(f"{base}/acs", BINDING_HTTP_POST)]},
                "authn_requests_signed": True,
                "want_response_signed": True,
                "want_assertions_signed": True,
                "allow_unsolicited": True,
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
            }
        },
    }
)
client = Saml2Client(config=config)
idp_entity_id = next(iter(client.metadata.identity_provider().keys())) if hasattr(
    client.metadata, "identity_provider"
) else None
if idp_entity_id is None:
    idp_entity_id = list(client.metadata.with_descriptor("idpsso").keys())[0]
outstanding = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    def send(self, status, body, content_type="text/html; charset=utf-8", headers=()):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/metadata":
            return self.send(200, str(entity_descriptor(config)), "application/samlmetadata+xml")
        if url.path == "/login":
            kwargs = {}
            if query.get("force") == ["1"]:
                kwargs["force_authn"] = "true"
            if query.get("passive") == ["1"]:
                kwargs["is_passive"] = "true"
            if query.get("ctx"):
                kwargs["requested_authn_context"] = RequestedAuthnContext(
                    authn_context_class_ref=[AuthnContextClassRef(text=c) for c in query["ctx"]],
                    comparison=query.get("cmp", ["exact"])[0],
                )
            req_id, info = client.prepare_for_authenticate(
                entityid=idp_entity_id,
                relay_state=query.get("relay", [""])[0],
                binding=BINDING_HTTP_REDIRECT,
                sign=True,
                sigalg=SIG_RSA_SHA256,
                **kwargs,
            )
            with lock:
                outstanding[req_id] = "/"
            location = dict(info["headers"])["Location"]
            return self.send(302, "", headers=[("Location", location)])
        return self.send(404, "not found")

    def do_POST(self):
        if urlparse(self.path).path != "/acs":
            return self.send(404, "not found")
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode("utf-8"))
        saml_response = form.get("SAMLResponse", [""])[0]
        result = {"relayState": form.get("RelayState", [None])[0]}
        try:
            with lock:
                pending = dict(outstanding)
            response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding=pending)
            if response is None:
                raise ValueError("pysaml2 returned no response")
            result.update(
                {
                    "ok": True,
                    "nameId": response.name_id.text,
                    "inResponseTo": response.in_response_to,
                    "authnContext": [a[0] for a in response.authn_info()],
                    "attributes": response.ava,
                }
            )
        except StatusError as err:
            # A status-only Response: pysaml2 reports its status. Check the signature ourselves, with the
            # IdP's key from its metadata, as an SP that wants signed responses does.
            import base64

            xml = base64.b64decode(saml_response).decode("utf-8")
            try:
                signed = bool(
                    client.sec.correctly_signed_response(xml, must=True, require_response_signature=True)
                )
            except Exception as sig_err:  # noqa: BLE001 - reported to the test
                signed = False
                result["signatureError"] = f"{type(sig_err).__name__}: {sig_err}"
            result.update({"ok": False, "status": type(err).__name__, "message": str(err), "signed": signed})
        except Exception as err:  # noqa: BLE001 - reported to the test, which fails on it
            result.update({"ok": False, "error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()})
        body = f'<!doctype html><title>SP</title><pre id="result">{html.escape(json.dumps(result))}</pre>'
        return self.send(200, body)


server.RequestHandlerClass = Handler
print(f"LISTENING {port}", flush=True)
server.serve_forever()

"""Container health check: GET /v1/health over TLS, trusting the service's own certificate (no curl needed)."""

import json
import os
import ssl
import sys
import urllib.request

home = os.environ.get("FACEWARDEN_HOME", "/var/lib/facewarden")
port = os.environ.get("FACEWARDEN_PORT", "8443")
context = ssl.create_default_context(cafile=os.path.join(home, "tls", "cert.pem"))
try:
    with urllib.request.urlopen(f"https://localhost:{port}/v1/health", context=context, timeout=4) as r:
        sys.exit(0 if json.load(r).get("status") == "ok" else 1)
except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)

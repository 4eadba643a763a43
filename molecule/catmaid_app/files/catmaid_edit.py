"""Make one edit through CATMAID's HTTP API, as the tracing tool would: a new child node.

Standard library only (urllib); runs with any python3. The API token comes from the environment
variable CATMAID_API_TOKEN or, without it, the first line of stdin (never from the command line),
sent as CATMAID wants it: "X-Authorization: Token ...".

  catmaid_edit.py --server URL --project-id 3 --parent NODE_ID
      Reads the parent's location (POST /{pid}/nodes/location), then creates a child of it
      50 nm away in x and y (POST /{pid}/treenode/create with parent_id, x, y, z, radius,
      confidence and state={"nocheck": true}: CATMAID's state.py skips the client-state check
      for that value, there is no client-side view of the neighbourhood here). Prints
      {"treenode_id": ..., "skeleton_id": ..., ...} and exits 0; on an error prints CATMAID's
      error JSON (or the HTTP error) on stderr and exits 1.

  catmaid_edit.py --server URL --project-id 3 --parent NODE_ID --expect-refusal
      The same create against an instance that must be read-only (a CATMAID on a hot standby):
      exits 0 only if CATMAID answers with an error that mentions read-only (PostgreSQL's
      "cannot execute ... in a read-only transaction"), printing that error as JSON on stdout;
      exits 1 if the node was created (printing it) or the error is another one.
"""
import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

READ_ONLY = re.compile(r"read[- _]?only", re.IGNORECASE)


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body  # parsed JSON when CATMAID sent JSON, else the text

    def message(self):
        if isinstance(self.body, dict):
            return str(self.body.get("error", self.body))
        return str(self.body)

    def summary(self):
        """CATMAID's error JSON without its (long) traceback fields."""
        if isinstance(self.body, dict):
            short = {k: v for k, v in self.body.items() if k not in ("detail", "traceback", "info")}
            return {"status": self.status, **short}
        return {"status": self.status, "error": str(self.body)[:2000]}


def post(server, path, fields, token, timeout):
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(
        server.rstrip("/") + path,
        data=data,
        method="POST",
        headers={
            "X-Authorization": "Token " + token,
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        raise ApiError(status, text) from None
    # CATMAID reports some errors as JSON with an "error" key (and a 4xx/5xx status).
    if status != 200 or (isinstance(body, dict) and "error" in body):
        raise ApiError(status, body)
    return body


def parent_location(server, pid, parent, token, timeout):
    rows = post(server, f"/{pid}/nodes/location", {"node_ids[0]": parent}, token, timeout)
    for row in rows:
        if int(row[0]) == parent:
            return [float(v) for v in row[1:4]]
    raise ApiError(404, {"error": f"node {parent} not found in project {pid}"})


def create_child(server, pid, parent, token, timeout):
    x, y, z = parent_location(server, pid, parent, token, timeout)
    fields = {
        "parent_id": parent,
        "x": x + 50.0,
        "y": y + 50.0,
        "z": z,
        "radius": -1,
        "confidence": 5,
        "state": json.dumps({"nocheck": True}),
    }
    return post(server, f"/{pid}/treenode/create", fields, token, timeout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--server", required=True, help="CATMAID base URL, e.g. http://host")
    ap.add_argument("--project-id", type=int, required=True)
    ap.add_argument("--parent", type=int, required=True, help="treenode id of the parent")
    ap.add_argument("--expect-refusal", action="store_true",
                    help="succeed only if the server refuses the edit as read-only")
    ap.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")
    args = ap.parse_args()
    token = os.environ.get("CATMAID_API_TOKEN", "") or (sys.stdin.readline().strip() if not sys.stdin.isatty() else "")
    if not token:
        print("catmaid_edit: set CATMAID_API_TOKEN in the environment or pass the token on stdin", file=sys.stderr)
        return 2

    try:
        created = create_child(args.server, args.project_id, args.parent, token, args.timeout)
    except ApiError as e:
        out = e.summary()
        if args.expect_refusal:
            refused = bool(READ_ONLY.search(e.message()))
            out["refused_read_only"] = refused
            print(json.dumps(out))
            return 0 if refused else 1
        print(json.dumps(out), file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), file=sys.stderr)
        return 1

    result = {
        "treenode_id": created.get("treenode_id"),
        "skeleton_id": created.get("skeleton_id"),
        "parent_id": args.parent,
        "edition_time": created.get("edition_time"),
    }
    if args.expect_refusal:
        result["refused_read_only"] = False
        print(json.dumps(result))
        print("catmaid_edit: the edit was NOT refused (the node was created)", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare a CATMAID replica with its main instance the way an analysis script sees them: pymaid.

Runs with the python of build/pymaid-venv (scripts/pymaid-venv.sh: python-catmaid 2.4.3, whose
import name is pymaid). The API token comes from the environment variable CATMAID_API_TOKEN or,
without it, the first line of stdin (never from the command line); it must be valid on both servers (they share one database).

Compare (default):
  pymaid_compare.py --main URL --replica URL --project-id 3 [--min-skeletons 5] [--max-skeletons 200]
  For each server a pymaid.CatmaidInstance (make_global=False, caching=False: every answer comes
  from the server). Lists the project's skeletons (CATMAID's /{pid}/skeletons/ through the
  instance's fetch: pymaid.find_neurons(min_size=1) would ask on stdin, and with min_size=2 it
  leaves out single-node skeletons), then fetches the skeletons with pymaid.get_neurons and
  compares, per neuron, the name, the node table (every column pymaid gives, rows sorted by
  node_id), the connector table (sorted) and the tags. Prints one JSON object on stdout:
    {"skeletons": N, "compared": [ids], "nodes": total, "connectors": total,
     "equal": true|false, "diff": [first differences], ...}
  Exit 0 when equal and at least --min-skeletons were compared, else 1.

Wait (shows an edit on the main instance reaching the replica):
  pymaid_compare.py --replica URL --project-id 3 --skeleton SKID --wait-node NODE_ID [--timeout 10]
  Polls the replica with pymaid.get_neuron until that skeleton's node table has NODE_ID. Prints
  {"skeleton": SKID, "node": NODE_ID, "found": true|false, "seconds": S, "polls": N}; exit 1 on
  timeout.
"""
import argparse
import json
import logging
import math
import os
import sys
import time
import warnings

MAX_DIFF = 20


def quiet_import():
    """Import pymaid (and navis under it) with its progress bars and INFO logging off."""
    warnings.filterwarnings("ignore")
    import navis
    import pymaid

    pymaid.set_pbars(hide=True)
    pymaid.set_loggers("ERROR")
    # pymaid builds its neurons with navis, which has progress bars ("Make nrn") of its own.
    navis.set_pbars(hide=True)
    navis.set_loggers("ERROR")
    logging.getLogger("pymaid").setLevel(logging.ERROR)
    logging.getLogger("navis").setLevel(logging.ERROR)
    return pymaid


def instance(pymaid, server, token, project_id):
    rm = pymaid.CatmaidInstance(server, api_token=token, project_id=project_id,
                                make_global=False, caching=False)
    rm.setup_cache(caching=False)  # belt and braces: polls and compares must reach the server
    return rm


def list_skeletons(rm):
    """All skeleton ids of the instance's project (CATMAID's /{pid}/skeletons/)."""
    return sorted(int(s) for s in rm.fetch(rm.make_url(rm.project_id, "skeletons/")))


def get_neurons(pymaid, skids, rm):
    """pymaid.get_neurons for a list of skeleton ids: always a list (it returns a bare
    CatmaidNeuron for one id), keyed by int skeleton id."""
    nl = pymaid.get_neurons(list(skids), remote_instance=rm)
    if isinstance(nl, pymaid.CatmaidNeuron):
        nl = [nl]
    return {int(n.skeleton_id): n for n in nl}


def plain(v):
    """A table cell as a plain JSON-able python value (categories, numpy scalars, NaN)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def table_rows(df, keys):
    """{key tuple: {column: value}} for a pymaid DataFrame (None -> {})."""
    if df is None or len(df) == 0:
        return [], {}
    cols = list(df.columns)
    df = df.sort_values(keys, kind="stable")
    rows = {}
    for rec in df.astype(object).itertuples(index=False, name=None):
        rec = {c: plain(v) for c, v in zip(cols, rec)}
        key = tuple(rec[k] for k in keys)
        # a repeated key (e.g. a node linked twice to one connector as pre and post) stays apart
        while key in rows:
            key = key + ("dup",)
        rows[key] = rec
    return cols, rows


def compare_table(what, skid, a, b, keys, diffs):
    cols_a, rows_a = table_rows(a, keys)
    cols_b, rows_b = table_rows(b, keys)
    if rows_a and rows_b and cols_a != cols_b:
        diffs.append({"skeleton": skid, "what": f"{what} columns", "main": cols_a, "replica": cols_b})
    only_a = sorted(set(rows_a) - set(rows_b), key=str)
    only_b = sorted(set(rows_b) - set(rows_a), key=str)
    if only_a:
        diffs.append({"skeleton": skid, "what": f"{what} only on main", "keys": [list(k) for k in only_a[:10]],
                      "count": len(only_a)})
    if only_b:
        diffs.append({"skeleton": skid, "what": f"{what} only on replica", "keys": [list(k) for k in only_b[:10]],
                      "count": len(only_b)})
    for key in sorted(set(rows_a) & set(rows_b), key=str):
        ra, rb = rows_a[key], rows_b[key]
        changed = {c: [ra.get(c), rb.get(c)] for c in sorted(set(ra) | set(rb)) if ra.get(c) != rb.get(c)}
        if changed:
            diffs.append({"skeleton": skid, "what": f"{what} row differs", "key": list(key),
                          "main_vs_replica": changed})
    return len(rows_a)


def compare(args, pymaid, token):
    t0 = time.monotonic()
    main = instance(pymaid, args.main, token, args.project_id)
    replica = instance(pymaid, args.replica, token, args.project_id)
    diffs = []
    skids_main = list_skeletons(main)
    skids_replica = list_skeletons(replica)
    if skids_main != skids_replica:
        diffs.append({"what": "skeleton ids",
                      "only_main": sorted(set(skids_main) - set(skids_replica))[:50],
                      "only_replica": sorted(set(skids_replica) - set(skids_main))[:50],
                      "main_count": len(skids_main), "replica_count": len(skids_replica)})
    common = sorted(set(skids_main) & set(skids_replica))[: args.max_skeletons]

    nodes = connectors = 0
    compared = []
    if common:
        neurons_main = get_neurons(pymaid, common, main)
        neurons_replica = get_neurons(pymaid, common, replica)
        for skid in common:
            a, b = neurons_main.get(skid), neurons_replica.get(skid)
            if a is None or b is None:
                diffs.append({"skeleton": skid, "what": "neuron missing",
                              "main": a is not None, "replica": b is not None})
                continue
            compared.append(skid)
            if a.name != b.name:
                diffs.append({"skeleton": skid, "what": "name", "main": a.name, "replica": b.name})
            nodes += compare_table("node", skid, a.nodes, b.nodes, ["node_id"], diffs)
            connectors += compare_table("connector", skid, a.connectors, b.connectors,
                                        ["node_id", "connector_id", "type"], diffs)
            tags_a = {k: sorted(int(n) for n in v) for k, v in (a.tags or {}).items()}
            tags_b = {k: sorted(int(n) for n in v) for k, v in (b.tags or {}).items()}
            if tags_a != tags_b:
                diffs.append({"skeleton": skid, "what": "tags", "main": tags_a, "replica": tags_b})

    enough = len(compared) >= args.min_skeletons
    if not enough:
        diffs.append({"what": "too few skeletons compared",
                      "compared": len(compared), "min_skeletons": args.min_skeletons})
    equal = not diffs
    summary = {
        "skeletons": len(skids_main),
        "compared": compared,
        "nodes": nodes,
        "connectors": connectors,
        "equal": equal,
        "diff": diffs[:MAX_DIFF],
        "diff_count": len(diffs),
        "main": args.main,
        "replica": args.replica,
        "project_id": args.project_id,
        "pymaid": pymaid.__version__,
        "seconds": round(time.monotonic() - t0, 2),
    }
    print(json.dumps(summary, default=str))
    return 0 if equal else 1


def wait_node(args, pymaid, token):
    replica = instance(pymaid, args.replica, token, args.project_id)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    polls = 0
    found = False
    last_error = None
    while True:
        polls += 1
        try:
            n = pymaid.get_neuron(args.skeleton, remote_instance=replica)
            found = bool((n.nodes.node_id == args.wait_node).any())
            last_error = None
        except Exception as e:  # not (yet) there, or the replica not answering: poll on
            last_error = f"{type(e).__name__}: {e}"
        if found or time.monotonic() >= deadline:
            break
        time.sleep(args.interval)
    out = {"skeleton": args.skeleton, "node": args.wait_node, "found": found,
           "seconds": round(time.monotonic() - t0, 3), "polls": polls,
           "replica": args.replica, "timeout": args.timeout}
    if last_error:
        out["error"] = last_error
    print(json.dumps(out))
    return 0 if found else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--main", help="main (read-write) CATMAID URL (compare mode)")
    ap.add_argument("--replica", required=True, help="read-only CATMAID URL")
    ap.add_argument("--project-id", type=int, required=True)
    ap.add_argument("--min-skeletons", type=int, default=5)
    ap.add_argument("--max-skeletons", type=int, default=200,
                    help="compare at most this many skeletons (lowest ids first)")
    ap.add_argument("--skeleton", type=int, help="wait mode: skeleton id")
    ap.add_argument("--wait-node", type=int, help="wait mode: node id to wait for on the replica")
    ap.add_argument("--timeout", type=float, default=10.0, help="wait mode: seconds")
    ap.add_argument("--interval", type=float, default=0.2, help="wait mode: seconds between polls")
    args = ap.parse_args()
    if (args.skeleton is None) != (args.wait_node is None):
        ap.error("--skeleton and --wait-node go together")
    if args.wait_node is None and not args.main:
        ap.error("--main is needed to compare")
    token = os.environ.get("CATMAID_API_TOKEN", "") or (sys.stdin.readline().strip() if not sys.stdin.isatty() else "")
    if not token:
        ap.error("set CATMAID_API_TOKEN in the environment or pass the token on stdin")

    pymaid = quiet_import()
    try:
        if args.wait_node is not None:
            return wait_node(args, pymaid, token)
        return compare(args, pymaid, token)
    except Exception as e:  # HTTP/connection errors: one JSON line, exit 1
        print(json.dumps({"equal": False, "error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())

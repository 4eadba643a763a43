"""Open CATMAID's tracing view in a headless Chromium and report what the front end did.

Driven by scripts/catmaid-browser-check.sh (make catmaid-browser): selenium (PyPI) on the controller
talks to Debian's chromedriver, which runs in the main instance's container and starts Debian's
chromium there (the Molecule scenario catmaid_app's cma-primary). The script logs in through CATMAID's own login box, opens the tracing tool on a
stack, waits until the tracing overlay has asked for its node list (and drawn what came back), and
prints one JSON object: the client settings the front end uses (read_only_mirror_index, the remote
servers' names and URLs, never their API keys), the nodes the overlay holds, and the node-list
requests the browser itself logged (Chrome's performance log), and every request it sent to the
replica (--replica: method and path, counted). The access logs of both instances are read by the
shell script: they are what the check is decided on.

Usage: catmaid_browser_check.py --webdriver URL --main URL [--replica URL] --project ID --stack ID
           --x NM --y NM --z NM --user NAME --password-file FILE [--settle S] [--timeout S]
The password is read from --password-file (mode 0600), never from the command line.
"""

import argparse
import json
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.command import Command
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

# WebGL for CATMAID's tracing overlay (Pixi.js) without a GPU. Debian's chromium 120 (bullseye) ships
# ANGLE but no SwiftShader (no libvk_swiftshader.so): --use-angle=swiftshader gives no WebGL at all, and
# ANGLE's default GL backend wants an X display. ANGLE on Mesa's EGL (llvmpipe, software; packages
# libegl1 and libegl-mesa0) works headless, and only with --ignore-gpu-blocklist (else WebGL stays off).
CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",  # chromedriver runs as root in the container
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    "--use-gl=angle",
    "--use-angle=gl-egl",
    "--ignore-gpu-blocklist",
]

STATE_JS = """
const out = {};
try {
  out.catmaid = typeof CATMAID !== 'undefined';
  if (!out.catmaid) return out;
  out.authenticated = !!(CATMAID.session && CATMAID.session.is_authenticated);
  out.user = CATMAID.session ? CATMAID.session.username : null;
  // The open project is the page's global `project` (init.js), not a CATMAID property.
  const prj = (typeof project !== 'undefined') ? project : null;
  out.project = prj ? prj.id : null;
  if (CATMAID.TracingOverlay && CATMAID.TracingOverlay.Settings) {
    out.read_only_mirror_index = CATMAID.TracingOverlay.Settings.session.read_only_mirror_index;
  }
  if (CATMAID.Client && CATMAID.Client.Settings) {
    out.remote_servers = (CATMAID.Client.Settings.session.remote_servers || []).map(
      r => ({name: r.name, url: r.url, type: r.type, has_api_key: !!r.api_key}));
  }
  out.nodes = null;
  out.webgl = null;
  if (prj) {
    const viewers = prj.getStackViewers();
    out.stack_viewers = viewers.length;
    for (const sv of viewers) {
      for (const layer of sv.getLayersOfType(CATMAID.TracingLayer)) {
        const o = layer.tracingOverlay;
        out.nodes = (out.nodes || 0) + (o && o.nodes ? o.nodes.size : 0);
        out.tracing_data_url = o ? o.tracingDataUrl : null;
      }
    }
  }
  const c = document.createElement('canvas');
  const gl = c.getContext('webgl') || c.getContext('experimental-webgl');
  if (gl) {
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    out.webgl = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
  } else {
    out.webgl = false;
  }
} catch (e) {
  out.error = String(e);
}
return out;
"""


def log(msg):
    print(f"catmaid_browser_check: {msg}", file=sys.stderr, flush=True)


def get_log(driver, kind):
    """A Chrome log (goog:loggingPrefs); webdriver.Remote has no get_log(), chromedriver has the command."""
    return driver.execute(Command.GET_LOG, {"type": kind})["value"]


def sent_requests(driver):
    """The requests Chrome sent, from its performance log (Network.requestWillBeSent): (method, URL)."""
    found = []
    try:
        entries = get_log(driver, "performance")
    except WebDriverException as exc:
        log(f"no performance log: {exc.msg}")
        return found
    for entry in entries:
        try:
            msg = json.loads(entry["message"])["message"]
        except (KeyError, ValueError):
            continue
        if msg.get("method") != "Network.requestWillBeSent":
            continue
        req = msg["params"]["request"]
        found.append((req["method"], req["url"].split("?", 1)[0]))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--webdriver", required=True, help="chromedriver's URL, e.g. http://172.24.0.2:9515")
    ap.add_argument("--main", required=True, help="the main instance's URL as the browser reaches it")
    ap.add_argument("--replica", help="the replica's URL: the requests sent there are listed")
    ap.add_argument("--project", type=int, required=True)
    ap.add_argument("--stack", type=int, required=True)
    ap.add_argument("--x", type=float, required=True, help="project coordinates in nm")
    ap.add_argument("--y", type=float, required=True)
    ap.add_argument("--z", type=float, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--settle", type=float, default=8.0,
                    help="seconds to wait after the overlay holds nodes (further node-list requests)")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()

    with open(args.password_file, encoding="utf-8") as f:
        password = f.read().strip()

    opts = webdriver.ChromeOptions()
    for a in CHROME_ARGS:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    main_url = args.main.rstrip("/")
    result = {"ok": False}
    t0 = time.monotonic()
    driver = webdriver.Remote(command_executor=args.webdriver, options=opts)
    try:
        result["browser"] = f'{driver.capabilities.get("browserName")} {driver.capabilities.get("browserVersion")}'
        wait = WebDriverWait(driver, args.timeout)
        driver.get(main_url + "/")
        account = wait.until(ec.visibility_of_element_located((By.ID, "account")))
        account.send_keys(args.user)
        driver.find_element(By.ID, "password").send_keys(password)
        # CATMAID covers the page with its busy overlay (#eventCatcher, cursor "wait") while the front end
        # still loads (slow on a first request after gunicorn's restart): a click then hits the overlay.
        wait.until(ec.invisibility_of_element_located((By.ID, "eventCatcher")))
        for attempt in range(30):
            try:
                wait.until(ec.element_to_be_clickable((By.ID, "login"))).click()
                break
            except ElementClickInterceptedException:
                if attempt == 29:
                    raise
                time.sleep(1)
        wait.until(lambda d: d.execute_script(
            "return typeof CATMAID !== 'undefined' && !!CATMAID.session && CATMAID.session.is_authenticated"))
        result["login_s"] = round(time.monotonic() - t0, 1)
        log(f"logged in as {args.user} after {result['login_s']} s")

        url = (f"{main_url}/?pid={args.project}&zp={args.z:g}&yp={args.y:g}&xp={args.x:g}"
               f"&tool=tracingtool&sid0={args.stack}&s0=0")
        result["url"] = url
        driver.get(url)
        # Until the overlay holds nodes: the node list came back and was parsed.
        try:
            wait.until(lambda d: (d.execute_script(STATE_JS).get("nodes") or 0) > 0)
            result["nodes_after_s"] = round(time.monotonic() - t0, 1)
        except TimeoutException:
            log(f"no nodes in the tracing overlay after {args.timeout:g} s")
        time.sleep(args.settle)
        state = driver.execute_script(STATE_JS)
        if state.get("tracing_data_url"):
            state["tracing_data_url"] = state["tracing_data_url"].split("?", 1)[0]
        result["state"] = state
        sent = sent_requests(driver)
        result["browser_node_list_requests"] = [{"method": m, "url": u} for m, u in sent if "/node/list" in u]
        if args.replica:
            replica = args.replica.rstrip("/") + "/"
            counts = {}
            for m, u in sent:
                if u.startswith(replica):
                    key = f"{m} /{u[len(replica):]}"
                    counts[key] = counts.get(key, 0) + 1
            result["browser_replica_requests"] = counts
        severe = [e["message"][:300] for e in get_log(driver, "browser") if e.get("level") == "SEVERE"]
        # The fixture's image tiles are on public hosts the lab cannot reach: counted, not listed.
        result["console_tile_errors"] = sum("ERR_NAME_NOT_RESOLVED" in m for m in severe)
        result["console_errors"] = [m for m in severe if "ERR_NAME_NOT_RESOLVED" not in m][:20]
        result["ok"] = bool(state.get("authenticated") and str(state.get("project")) == str(args.project)
                            and (state.get("nodes") or 0) > 0)
    finally:
        result["elapsed_s"] = round(time.monotonic() - t0, 1)
        try:
            driver.quit()
        except WebDriverException:
            pass
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

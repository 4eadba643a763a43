"""A stack mirror that answers correctly but slowly: serves /srv/tiles on port 8080 after a delay."""
import functools
import sys
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0


class SlowHandler(SimpleHTTPRequestHandler):
    def do_GET(self):
        time.sleep(DELAY)
        super().do_GET()


if __name__ == '__main__':
    handler = functools.partial(SlowHandler, directory='/srv/tiles')
    ThreadingHTTPServer(('0.0.0.0', 8080), handler).serve_forever()

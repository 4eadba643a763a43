"""Requests a browser on the main instance's page sends to the replica's CATMAID (catmaid Molecule
scenario): the preflight and the GET of a node list, with an allowed Origin and with each of the others
given (an unrelated site and near misses of the allowed one). Prints one JSON object: status and CORS
headers of each response."""
import http.client
import json
import sys

host, allowed, others = sys.argv[1], sys.argv[2], sys.argv[3:]
HEADERS = ('Access-Control-Allow-Origin', 'Access-Control-Allow-Methods', 'Access-Control-Allow-Headers',
           'Access-Control-Max-Age', 'Vary')


def ask(method, origin):
    conn = http.client.HTTPConnection(host, 80, timeout=10)
    headers = {'Origin': origin}
    if method == 'OPTIONS':
        headers.update({'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-authorization'})
    else:
        headers['X-Authorization'] = 'Token 0123456789abcdef0123456789abcdef01234567'
    conn.request(method, '/3/node/list?left=0&top=0&z=0&width=100&height=100', headers=headers)
    resp = conn.getresponse()
    body = resp.read().decode(errors='replace')
    conn.close()
    return {'status': resp.status, 'headers': {h: resp.getheader(h) for h in HEADERS}, 'body': body[:100]}


print(json.dumps({'allowed_preflight': ask('OPTIONS', allowed), 'allowed_get': ask('GET', allowed),
                  'others': [{'origin': other, 'preflight': ask('OPTIONS', other), 'get': ask('GET', other)}
                             for other in others]}))

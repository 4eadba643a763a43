"""Probe a PostgreSQL port the way a client starts: send an SSLRequest, report the answer.

Usage: python3 pg_probe.py HOST PORT
Prints one JSON object: {"host", "port", "result", "answer"} where result is
  answered  the server replied 'S' (SSL offered) or 'N' (SSL refused) -> a PostgreSQL server talks to us
  closed    TCP connected, then closed without a single byte (nginx `deny`)
  reset     TCP connected, then reset
  refused   TCP connection refused (nothing listens for us)
  timeout   no answer within the timeout
  error     anything else (see "error")
Exit status is always 0; the caller asserts on the result.
"""
from __future__ import annotations

import json
import socket
import struct
import sys

SSL_REQUEST = struct.pack("!II", 8, 80877103)


def probe(host: str, port: int, timeout: float = 5.0) -> dict:
    out = {"host": host, "port": port, "result": "error", "answer": ""}
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        out["result"] = "refused"
        return out
    except socket.timeout:
        out["result"] = "timeout"
        return out
    except OSError as exc:
        out["error"] = str(exc)
        return out
    try:
        sock.settimeout(timeout)
        sock.sendall(SSL_REQUEST)
        data = sock.recv(1)
        if data in (b"S", b"N"):
            out["result"] = "answered"
            out["answer"] = data.decode()
        elif data == b"":
            out["result"] = "closed"
        else:
            out["answer"] = repr(data)
            out["error"] = "unexpected first byte"
    except ConnectionResetError:
        out["result"] = "reset"
    except socket.timeout:
        out["result"] = "timeout"
    except OSError as exc:
        out["error"] = str(exc)
    finally:
        sock.close()
    return out


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]))))

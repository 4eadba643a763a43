"""Sessions of a stand-in CATMAID instance, through its real settings (the role's fragment),
Django and memcached. Run with the instance's virtualenv, as the web server user:
  catmaid_session.py create             a session holding a probe value; prints its key and cache key
  catmaid_session.py load KEY MARKER    load the session KEY as a request would; says whether MARKER
                                        (a file a planted pickle would create) exists afterwards
  catmaid_session.py threads N ROUNDS   N threads at once read one session ROUNDS times, through
                                        Django's session store and through one cache object shared
                                        by the threads (as a module-level `cache = caches[...]` is)
Prints one JSON object."""
import json
import os
import sys
import threading
import uuid
from importlib import import_module

import django
from django.conf import settings

django.setup()
from django.core.cache import caches  # noqa: E402  (after setup)

engine = import_module(settings.SESSION_ENGINE)
out = {'session_engine': settings.SESSION_ENGINE, 'location': settings.CACHES['default']['LOCATION'],
       'options': settings.CACHES['default'].get('OPTIONS', {})}


def cache_key(session_key):
    return caches[getattr(settings, 'SESSION_CACHE_ALIAS', 'default')].make_key(engine.KEY_PREFIX + session_key)


if sys.argv[1] == 'create':
    tag = uuid.uuid4().hex
    session = engine.SessionStore()
    session['probe'] = tag
    session.save()
    out.update(session_key=session.session_key, cache_key=cache_key(session.session_key), probe=tag,
               read_back=engine.SessionStore(session_key=session.session_key).get('probe') == tag,
               planted_key=cache_key('intruder' + uuid.uuid4().hex[:24]))
elif sys.argv[1] == 'load':
    key, marker = sys.argv[2], sys.argv[3]
    session = engine.SessionStore(session_key=key)
    try:
        loaded = session.load()
        out['loaded'] = repr(loaded)[:200]
    except Exception as exc:  # what a request would see
        out['error'] = f'{type(exc).__name__}: {exc}'
    out['marker_exists'] = os.path.exists(marker)
    out['marker'] = open(marker).read().strip() if out['marker_exists'] else None
elif sys.argv[1] == 'threads':
    n, rounds = int(sys.argv[2]), int(sys.argv[3])
    blob = os.urandom(128 * 1024).hex()
    session = engine.SessionStore()
    session['blob'] = blob
    session.save()
    key = session.session_key
    shared = caches['default']          # one backend object (and client pool) for every thread
    failures = {'session_store': 0, 'shared_cache': 0}
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def reader():
        for _round in range(rounds):
            barrier.wait()
            try:
                ok_store = engine.SessionStore(session_key=key).get('blob') == blob
                value = shared.get(engine.KEY_PREFIX + key)
                ok_shared = isinstance(value, dict) and value.get('blob') == blob
            except Exception as exc:
                ok_store = ok_shared = False
                with lock:
                    errors.append(f'{type(exc).__name__}: {exc}')
            with lock:
                failures['session_store'] += not ok_store
                failures['shared_cache'] += not ok_shared

    threads = [threading.Thread(target=reader) for _thread in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.update(threads=n, rounds=rounds, reads_each=n * rounds, failed=failures, errors=errors[:5])
print(json.dumps(out))

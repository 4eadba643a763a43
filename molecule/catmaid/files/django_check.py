"""Load a CATMAID-like Django settings module that includes the role's fragment, then use the
real cache and session backends. Prints one JSON object. Run with the instance's virtualenv."""
import json
import os
import socket
import uuid
from importlib import import_module

import django
from django.conf import settings


def memcached(command: bytes) -> bytes:
    """One raw memcached text-protocol command over the cache's unix socket; the answer up to END."""
    location = settings.CACHES['default']['LOCATION']
    assert location.startswith('unix:'), location
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(location[len('unix:'):])
        sock.sendall(command + b'\r\n')
        data = b''
        while not data.endswith(b'END\r\n'):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    return data


def raw_value_size(key: str):
    """Bytes memcached holds under the cache's full key, or None."""
    answer = memcached(b'get ' + key.encode())
    first = answer.split(b'\r\n', 1)[0].split()
    return int(first[3]) if first and first[0] == b'VALUE' else None


django.setup()
from django.apps import apps  # noqa: E402  (after setup)
from django.core.cache import caches  # noqa: E402

out = {
    'django': django.get_version(),
    'email_backend': settings.EMAIL_BACKEND,
    'cache_backend': settings.CACHES['default']['BACKEND'],
    'cache_options': settings.CACHES['default'].get('OPTIONS', {}),
    'session_engine': settings.SESSION_ENGINE,
    'readonly_lastlogin_installed': apps.is_installed('catmaid_readonly_lastlogin'),
    'installed_apps_type': type(settings.INSTALLED_APPS).__name__,
    'no_update_last_login': settings.NO_UPDATE_LAST_LOGIN,
}


class LoginProbe:
    """A user as django.contrib.auth's update_last_login sees it: it sets last_login and saves."""
    last_login = None

    def __init__(self):
        self.saved = []

    def save(self, **kwargs):
        self.saved.append(kwargs.get('update_fields'))


# What a login does after authenticating: send user_logged_in. With the role's app no receiver may
# write last_login; then, as the control, with Django's receiver connected again it must.
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import update_last_login  # noqa: E402
from django.contrib.auth.signals import user_logged_in  # noqa: E402

probe = LoginProbe()
user_logged_in.send(sender=get_user_model(), request=None, user=probe)
out['login_saved_fields'] = probe.saved
user_logged_in.connect(update_last_login, dispatch_uid='update_last_login')
control = LoginProbe()
user_logged_in.send(sender=get_user_model(), request=None, user=control)
out['control_saved_fields'] = control.saved
user_logged_in.disconnect(update_last_login, dispatch_uid='update_last_login')

# A login whose stored hash needs an upgrade (fewer PBKDF2 iterations than this Django's, as after an
# upgrade): checking the password must not save it again on the replica; the control shows that Django
# itself would.
from django.contrib.auth import hashers  # noqa: E402

old_hash = hashers.PBKDF2PasswordHasher().encode('lab-password', 'labsalt1234567890', iterations=1000)
user = get_user_model()(username='lab', password=old_hash)
rehash_saves = []
user.save = lambda **kwargs: rehash_saves.append(kwargs.get('update_fields'))
out['old_hash_needs_upgrade'] = hashers.PBKDF2PasswordHasher().must_update(old_hash)
out['old_hash_login_ok'] = user.check_password('lab-password')
out['old_hash_wrong_password'] = user.check_password('not-the-password')
out['old_hash_saved_fields'] = rehash_saves
out['old_hash_unchanged'] = user.password == old_hash
upgraded = []
out['control_rehash_ok'] = hashers.check_password('lab-password', old_hash, setter=upgraded.append)
out['control_rehash_setter_called'] = upgraded == ['lab-password']

stats = dict(line.split()[1:3] for line in memcached(b'stats settings').decode().splitlines() if line.startswith('STAT '))
out['memcached_item_size_max'] = int(stats['item_size_max'])

cache = caches['default']
tag = uuid.uuid4().hex
five = os.urandom(5 * 1024 * 1024)
cache.set('five-' + tag, five, 300)
out['five_mb_read_back'] = cache.get('five-' + tag) == five
out['five_mb_in_memcached_bytes'] = raw_value_size(cache.make_key('five-' + tag))
eleven = os.urandom(11 * 1024 * 1024)
try:
    cache.set('eleven-' + tag, eleven, 300)
    out['eleven_mb_set_error'] = None
except Exception as exc:  # the limit must show up as a miss or an error, never as stored
    out['eleven_mb_set_error'] = type(exc).__name__
out['eleven_mb_cached'] = cache.get('eleven-' + tag) is not None

engine = import_module(settings.SESSION_ENGINE)
session = engine.SessionStore()
session['probe'] = tag
session.save()
key = session.session_key
out['session_read_back'] = engine.SessionStore(session_key=key).get('probe') == tag
if settings.SESSION_ENGINE.endswith('.file'):
    path = os.path.join(settings.SESSION_FILE_PATH, settings.SESSION_COOKIE_NAME + key)
    out['session_file'] = path
    out['session_file_exists'] = os.path.isfile(path)
    out['session_in_memcached_bytes'] = None
else:
    out['session_file'] = None
    out['session_in_memcached_bytes'] = raw_value_size(cache.make_key(engine.KEY_PREFIX + key))
print(json.dumps(out))

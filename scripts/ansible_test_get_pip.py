# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the pip bootstrap script that ansible-test downloads from its own CDN.

That CDN is not reachable from our machines (only PyPI is), so `make sanity` places this
file where ansible-test caches the script. It does what get-pip.py does for ansible-test:
installs pip into the running interpreter (from the interpreter's bundled ensurepip wheel)
and then the requested packages from PyPI.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> None:
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    # In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own process,
    # which would hide the machine's pip configuration (index, certificates) from the install.
    subprocess.run([sys.executable, '-m', 'ensurepip', '--upgrade'], check=True)
    if args:
        subprocess.run([sys.executable, '-m', 'pip', 'install'] + args, check=True)


if __name__ == '__main__':
    main()

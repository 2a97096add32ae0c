"""Rebuild a jar from its unpacked tree (bench/gpu/run.sh, offline install).

A jar is a zip whose ``META-INF/MANIFEST.MF`` comes first; the JDK's ``jar`` tool is not in the
trimmed runtime the offline bundle carries, so the standard library's zipfile writes it.

Usage: python3 bench/gpu/repack_jar.py UNPACKED_DIR OUT.jar
"""

from __future__ import annotations

import os
import sys
import zipfile


def repack(source: str, jar: str) -> int:
    """Zip every file under ``source`` into ``jar`` (manifest first); returns the entry count."""
    names = [
        os.path.relpath(os.path.join(folder, name), source)
        for folder, _, files in os.walk(source)
        for name in files
    ]
    names.sort(key=lambda n: (n != "META-INF/MANIFEST.MF", not n.startswith("META-INF/"), n))
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for name in names:
            out.write(os.path.join(source, name), name)
    return len(names)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(f"rebuilt {sys.argv[2]} ({repack(sys.argv[1], sys.argv[2])} entries)")

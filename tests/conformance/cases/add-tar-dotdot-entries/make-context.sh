set -e
python3 - <<'PY'
import tarfile, io
with tarfile.open('context/evil.tar', 'w') as t:
    for name, data in [('../../up.txt', b'up\n'), ('/abs.txt', b'abs\n'), ('ok/./x.txt', b'x\n')]:
        i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644
        t.addfile(i, io.BytesIO(data))
PY

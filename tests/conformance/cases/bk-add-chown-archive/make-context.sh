python3 - <<'PY'
import tarfile, io, gzip, sys
def tar(path, entries, gz=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for e in entries:
            name, data = e[0], e[1]
            i = tarfile.TarInfo(name); i.mode = 0o644
            if isinstance(data, bytes): i.size = len(data)
            else: i.type, i.linkname, i.mode = tarfile.SYMTYPE, data, 0o755
            t.addfile(i, io.BytesIO(data) if isinstance(data, bytes) else None)
    b = buf.getvalue()
    if gz: b = gzip.compress(b, mtime=0)
    open(path, "wb").write(b)

tar("context/t.tar", [("foo", b"content0")])
PY

set -e
python3 - <<'PY'
import tarfile, io
def f(t, name, data=b'', **kw):
    i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i, io.BytesIO(data) if data else None)
with tarfile.open('context/links.tar', 'w') as t:
    f(t, 'a.txt', b'a\n')
    f(t, 'outside/', type=tarfile.DIRTYPE, mode=0o755)
    f(t, 'sub/outside/', type=tarfile.DIRTYPE, mode=0o755)
    f(t, 'up', type=tarfile.SYMTYPE, linkname='../../outside')
    f(t, 'l1', type=tarfile.SYMTYPE, linkname='up')
    f(t, 'l1/through.txt', b'through\n')
    f(t, 'abs', type=tarfile.SYMTYPE, linkname='/sub/outside')
    f(t, 'abs/viaabs.txt', b'abs\n')
    f(t, 'hard', type=tarfile.LNKTYPE, linkname='../../a.txt')
    f(t, 'hard2', type=tarfile.LNKTYPE, linkname='/a.txt')
PY

set -e
cd context
mkdir -p a/b/c dir/sub keepdir/x .hidden/in node/node_modules/m "sp ace" 'br[ack]et'
for f in a/b/c/f.txt a/b/g.txt a/h.log dir/sub/s dir/d keepdir/x/y .hidden/in/z .gitignore .env node/node_modules/m/i.js node/n.js "sp ace/f" 'br[ack]et/f' top.txt Dockerfile.bak; do echo "$f" > "$f"; done
cat > .dockerignore <<'I'
# dirs with trailing slash
dir/
!dir/sub/
**/*.log
a/**/c
.*
!.gitignore
**/node_modules
sp\ ace
br\[ack\]et
*.bak
/top.txt
keepdir
!keepdir/x/y
I

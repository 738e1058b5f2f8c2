set -e
mkdir -p context/ctx/x; echo y > context/ctx/x/y; echo nowfile > context/ctx/link-to-file; echo z > context/ctx/rel-link-dir
ln -s x context/ctx/f

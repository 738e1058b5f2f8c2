set -e
mkdir -p t/sub; echo a > t/a.txt; echo s > t/sub/s
tar -C t -cf - a.txt sub | zstd -q -c > context/a.tar.zst
cp context/a.tar.zst context/b.tzst

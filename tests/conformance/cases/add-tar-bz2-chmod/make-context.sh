set -e
mkdir -p t/sub; echo a > t/a.txt; echo s > t/sub/s
tar -C t -cjf context/a.tar.bz2 a.txt sub

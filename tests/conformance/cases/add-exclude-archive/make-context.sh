set -e
mkdir -p t/d; echo a > t/a.txt; echo m > t/d/m.md; echo n > t/d/n.txt
tar -C t -cf context/ctx.tar a.txt d
echo plain > context/plain.txt

set -e
echo "not a tar" > context/fake.tar
echo hello | gzip -c > context/data.gz
mkdir t; echo r > t/r.txt; tar -C t -czf context/real.tgz r.txt

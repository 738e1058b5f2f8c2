set -e
mkdir -p t context/dir; echo i > t/i.txt
tar -C t --mtime=@0 --owner=0 --group=0 --numeric-owner -cf context/dir/inner.tar i.txt
gzip -n -c context/dir/inner.tar > context/dir/inner.tar.gz
echo p > context/dir/plain.txt

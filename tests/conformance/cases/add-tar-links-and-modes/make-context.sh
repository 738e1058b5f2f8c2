set -e
mkdir -p t/d t/e
echo f > t/d/f; chmod 4755 t/d/f; ln t/d/f t/d/hard; ln -s f t/d/soft; ln -s /etc/passwd t/d/abs
chmod 1777 t/e; mkfifo t/fifo
tar -C t --numeric-owner --owner=12 --group=34 -cf context/l.tar d e fifo

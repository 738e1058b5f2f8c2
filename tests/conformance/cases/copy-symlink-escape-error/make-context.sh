set -e
ln -s /etc/hostname context/abs-link

set -e
echo f > context/file; mkdir -p context/dir; echo in > context/dir/f
ln -s /file context/abs-link; ln -s abs-link context/chain; ln -s /dir context/absdir

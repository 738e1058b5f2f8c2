set -e
mkdir -p context/dir/sub; echo x > context/dir/x; echo s > context/dir/sub/s; echo f > context/file
ln -s file context/link-to-file; ln -s dir context/link-to-dir;
ln -s ../file context/dir/up

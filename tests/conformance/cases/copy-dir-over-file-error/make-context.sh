set -e
mkdir -p context/ctx/file-to-dir; echo nowdir > context/ctx/file-to-dir/inner

set -e
mkdir -p context/ctx/link-to-dir; echo z > context/ctx/link-to-dir/z

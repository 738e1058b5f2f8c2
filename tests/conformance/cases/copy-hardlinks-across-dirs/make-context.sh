set -e
mkdir -p context/a context/b; echo one > context/a/one; ln context/a/one context/b/two; ln context/a/one context/a/three

set -e
mkdir -p t/d t/link2; echo new > t/d/f; echo n2 > t/link2/z
tar -C t -cf context/o.tar d link2

set -e
mkdir -p t/d; echo n > t/new.txt; : > t/.wh.gone; : > t/d/.wh..wh..opq; echo l > t/d/later
tar -C t -cf context/wh.tar new.txt .wh.gone d

set -e
echo j > "context/日本語.txt"; echo e > "context/émoji-😀.txt"; echo s > "context/space name.txt"
mkdir -p "context/sp dir/ñ"; echo n > "context/sp dir/ñ/file"
long=$(printf 'a%.0s' $(seq 1 200)); mkdir -p "context/$long/$long"; echo l > "context/$long/$long/$long.txt"

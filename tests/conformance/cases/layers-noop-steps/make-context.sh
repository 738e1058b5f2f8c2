mkdir -p context/empty

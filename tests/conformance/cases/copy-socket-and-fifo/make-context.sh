echo f > context/f; mkfifo context/fifo
python3 -c "import socket; s=socket.socket(socket.AF_UNIX); s.bind('context/sock')"

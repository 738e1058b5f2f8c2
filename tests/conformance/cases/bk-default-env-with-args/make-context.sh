chmod 0700 context/myscript.sh

set -e
mkdir -p context/sticky context/setgid context/ro
echo s > context/suid; chmod 4755 context/suid
echo g > context/sgid; chmod 2711 context/sgid
chmod 1777 context/sticky; chmod 2775 context/setgid
echo r > context/ro/r; chmod 0400 context/ro/r; chmod 0555 context/ro
echo x > context/exec; chmod 0700 context/exec
echo w > context/world; chmod 0666 context/world

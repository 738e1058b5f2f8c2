cd context && for n in a1.txt b2.txt c3.txt '[literal].txt' x.md; do echo "$n" > "$n"; done

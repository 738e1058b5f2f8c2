set -e
cd context
printf bar-contents > bar; ln -s bar foo; mkdir -m 0700 sub
printf lfile-contents > sub/lfile; ln -s subfile sub/l0; printf subfile-contents > sub/subfile
ln -s second sub/l1; ln -s baz sub/second; printf baz-contents > sub/baz
chmod 0600 bar sub/lfile sub/subfile sub/baz

cd context; printf foo-contents > foo.go; printf bar-contents > bar.go; mkdir -p sub/dir1/dir2; chmod 0700 sub sub/dir1 sub/dir1/dir2
printf foo-contents > sub/dir1/dir2/foo; chmod 0600 foo.go bar.go sub/dir1/dir2/foo

mkdir -p -m 0700 context/sub/dir1/dir2 context/files; chmod 0700 context/sub/dir1 context/sub
printf foo-contents > context/sub/dir1/dir2/foo; printf foo.go-contents > context/files/foo.go; chmod 0600 context/sub/dir1/dir2/foo context/files/foo.go

vendor/a/b/c.go

vendor/a/keep.go

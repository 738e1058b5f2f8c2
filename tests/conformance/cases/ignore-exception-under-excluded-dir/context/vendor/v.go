vendor/v.go

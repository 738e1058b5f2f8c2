printf foo-contents > context/foo; chmod 0600 context/foo; mkdir -m 0700 context/bar; : > context/bar/sub; chmod 0600 context/bar/sub

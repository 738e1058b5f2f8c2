printf foo-contents > context/foo; chmod 0600 context/foo; printf bar-contents > context/bar; chmod 0700 context/bar

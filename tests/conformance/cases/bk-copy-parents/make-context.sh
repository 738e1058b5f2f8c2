mkdir -p context/foo1/foo2 && chmod 0700 context/foo1 context/foo1/foo2 && printf testing > context/foo1/foo2/bar && printf testing2 > context/foo1/foo2/baz && chmod 0600 context/foo1/foo2/ba*

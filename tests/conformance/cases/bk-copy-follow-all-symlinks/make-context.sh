printf bar-contents > context/bar && mkdir -m 0700 context/foo && ln -s ../bar context/foo/sub

mkdir -p context/sub && printf contents > context/sub/foo && chmod 0700 context/sub && chmod 0600 context/sub/foo && ln -s sub context/link

mkdir -p context/d/s && echo f > context/d/f && ln -s f context/d/l && ln -s /nowhere context/d/dangling && mkdir context/d/empty

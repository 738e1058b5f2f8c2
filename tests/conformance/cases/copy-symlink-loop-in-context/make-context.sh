cd context && ln -s loop loop && ln -s b a && ln -s a b && echo f > f && ln -s ../../../../etc/passwd escape

cd context && ln -s loop loop

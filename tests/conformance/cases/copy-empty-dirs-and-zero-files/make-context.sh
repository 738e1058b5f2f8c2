mkdir -p context/empty context/nested/deeper/deepest; : > context/zero; chmod 0000 context/zero; chmod 0700 context/nested/deeper

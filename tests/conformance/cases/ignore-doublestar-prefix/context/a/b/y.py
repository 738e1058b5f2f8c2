a/b/y.py

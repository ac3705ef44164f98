"""Greets whoever the environment names: GREETING (default "Hello") and NAME (required).

It reads os.environ, and the strict and moderate profiles refuse `import os`: run it with
"security_level": "permissive".
"""
import os
import sys

name = os.environ.get("NAME")
if not name:
    sys.exit("NAME is not set")
print("%s, %s!" % (os.environ.get("GREETING", "Hello"), name))

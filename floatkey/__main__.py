import sys

from floatkey.app.cli import main

sys.exit(main())

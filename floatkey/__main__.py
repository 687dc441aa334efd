import sys

from floatkey.cli import main

sys.exit(main())

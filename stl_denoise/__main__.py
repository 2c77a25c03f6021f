import sys

from stl_denoise.cli import main

sys.exit(main())

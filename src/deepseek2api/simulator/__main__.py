"""`python -m deepseek2api.simulator --port N --difficulty D --users a@x:pw,b@x:pw …`"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

import sys

from booking_app.cli import main

sys.exit(main())

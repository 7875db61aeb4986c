import sys

from training.forecast.train import main
from training.userdata import DataFileError

try:
    main()
except DataFileError as exc:
    # FILE:LINE:COLUMN: message, the form editors and CI logs link to; no traceback for a bad file.
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)

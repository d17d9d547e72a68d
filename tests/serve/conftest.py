from __future__ import annotations

import sys
from pathlib import Path

# The sample handlers in fixtures/serve are imported as ``fixtures.serve.<module>``, also by
# isolated servers (which inherit sys.path).
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

"""Operations on whole stores, for Python and the command line alike.

- :func:`describe`: what a store holds, as a dict (``intake-zspy info``);
- :func:`verify`: check every document and chunk, returning a :class:`Report`
  (``intake-zspy check``);
- :func:`copy`: copy a store elsewhere, optionally rechunked and recompressed
  (``intake-zspy convert``);
- :func:`summarize_signal`: the one summary of a signal the intake source and the
  catalogs publish.
"""

from intake_zspy.ops._report import ArrayCheck, Report
from intake_zspy.ops.copy import ChunkRule, copy
from intake_zspy.ops.describe import describe
from intake_zspy.ops.summary import summarize_signal
from intake_zspy.ops.verify import verify

__all__ = ["ArrayCheck", "ChunkRule", "Report", "copy", "describe", "summarize_signal", "verify"]

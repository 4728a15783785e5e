"""Face preprocessing: records of videos, frame folders or images -> aligned face crops + index.

``preprocess_records(records, root, out, PreprocessConfig(...))`` samples frames uniformly
(:mod:`.video`), detects and aligns faces (:mod:`.faces`) and writes crops, ``index.csv`` and
``report.json`` resumably (:mod:`.pipeline`). Command line: ``python -m datamodules.preprocess``.
"""

from datamodules.preprocess.pipeline import (
    PreprocessConfig,
    PreprocessError,
    PreprocessResult,
    format_summary,
    preprocess_records,
)

__all__ = ["PreprocessConfig", "PreprocessError", "PreprocessResult", "format_summary", "preprocess_records"]

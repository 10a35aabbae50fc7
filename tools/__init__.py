"""Offline builders of the data the package ships: run from a clone, never at run time.

    python -m tools.build_bible_corpus --output training/translation/data/bible.en-es.tsv.gz
"""

"""Voxmill's one text pipeline: documents → structure → spoken form.

- :mod:`text_processing.formats`: uploaded bytes (txt, Markdown, EPUB, DOCX, HTML, PDF, SSML)
  → document text, refusing what cannot be read with a message naming the problem.
- :mod:`text_processing.structure`: text → chapters → blocks → sentences (the one sentence
  splitter, used by the API, the CLI and the voice handler).
- :mod:`text_processing.spoken`: normalization by semiotic class (the spoken form), with the
  tables in :mod:`text_processing.tables`.
- :mod:`text_processing.ssml` and :mod:`text_processing.lexicon`: pronunciation control.
- :mod:`text_processing.frontend`: all of it as one call for a sentence or a request.
- :mod:`text_processing.isolation`: untrusted documents parsed in worker processes under a
  deadline and a memory limit.
"""

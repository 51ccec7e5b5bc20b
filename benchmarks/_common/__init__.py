"""What the benchmark scripts share, one module per concern.

- :mod:`.paths`: the repository's directories, the stores' names, chunk files;
- :mod:`.timing`: timed runs, interleaved rounds, medians and ranges;
- :mod:`.memory`: resident and peak memory, fresh measuring processes;
- :mod:`.lab`: the S3 lab (env file, proxy control API, request log, round-trip chains,
  per-request floors);
- :mod:`.venv`: the HyperSpy venv (persistent workers, the stores, s3fs there);
- :mod:`.context`: machine, versions and git state of a run;
- :mod:`.report`: progress output, table formatting, results JSON, the docs sections.

Every module imports only the standard library at module level: the scripts that run
inside the HyperSpy venv (``make_data.py``, ``rsciio_worker.py``,
``hyperspy_write_worker.py``) import some of them too. Heavier imports (s3fs, zarr,
``tests.hyperspy.env``) happen in the functions that need them.
"""

"""The job store's benchmark: ``python -m bench --url URL``.

It measures what a job store is judged by — jobs per second enqueued and
claimed, and how that holds as the table grows — and runs, side by side in the
same process, a raw-driver baseline that executes the very statements this
library builds, so that the cost of the layers above the driver is a printed
ratio. Every phase checks its own result (each job claimed and completed
exactly once) so that a fast wrong answer fails the run.

Modules, one job each:

- ``__main__``: the command line;
- ``phases``: the phases and what each measures;
- ``clients``: the library client and the raw-driver client, with one interface;
- ``baseline``: our statements compiled once and run on the bare DB-API driver;
- ``raw_records``: the raw side's ``JobData`` from the driver's rows, in plain code;
- ``aio``: the async phases' clients (the async backend, the raw asyncio
  driver) and their tasks on one event loop;
- ``runner``: threads and processes, timing, latencies, the progress bar;
- ``fill``: fast bulk fill of waiting and finished rows in SQL;
- ``checks``: exact-once accounting, and that the baseline runs the
  library's SQL and builds the same records;
- ``report``: the table and the JSON file.
- ``drain``: ``python -m bench.drain``, worker processes draining no-op jobs,
  beside pgqueuer and procrastinate (``drain_jobs`` holds the job);
- ``soak``: ``python -m bench.soak``, a bounded soak run with exact-once
  accounting (``docs/reliability.md``).
"""
